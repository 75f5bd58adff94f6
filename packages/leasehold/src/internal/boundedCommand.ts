import { Cause, Duration, Effect } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../LeaseError.ts"

/**
 * Bounds one Redis command by `timeout` and maps its failures, its timeout and replies that `parse` rejects
 * (`undefined`) to a `LeaseError` with reason `StoreUnavailable` naming the operation and the key.
 */
export const boundedCommand =
  (timeout: Duration.Duration, operation: string, key: string) =>
  <A>(
    command: Effect.Effect<unknown, Redis.RedisError>,
    parse: (reply: unknown) => A | undefined
  ): Effect.Effect<A, LeaseError.LeaseError> => {
    const unavailable = (cause: unknown) => LeaseError.make(new LeaseError.StoreUnavailable({ operation, key, cause }))
    return command.pipe(
      Effect.mapError((error) => unavailable(error.cause)),
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(unavailable(new Cause.TimeoutError(`no reply from Redis within ${Duration.format(timeout)}`)))
      }),
      Effect.flatMap((reply) => {
        const parsed = parse(reply)
        return parsed === undefined
          ? Effect.fail(unavailable(new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`)))
          : Effect.succeed(parsed)
      })
    )
  }
