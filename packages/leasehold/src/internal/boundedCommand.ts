import { Cause, Duration, Effect, Exit } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../LeaseError.ts"

/**
 * The failures of Redis commands bounded by `timeout`, as `StoreUnavailable` naming the operation and the key: a
 * command that failed, one that got no reply in time, and a reply that `parse` rejects (`undefined`).
 */
export const commandErrors = (timeout: Duration.Duration) => {
  const unavailable = (operation: string, key: string, cause: unknown) =>
    LeaseError.make(new LeaseError.StoreUnavailable({ operation, key, cause }))
  const noReply = `no reply from Redis within ${Duration.format(timeout)}`
  return {
    unavailable,
    timedOut: (operation: string, key: string) => unavailable(operation, key, new Cause.TimeoutError(noReply)),
    /** The parsed reply, or `StoreUnavailable` for a reply of an unexpected shape. */
    parsed: <A>(
      operation: string,
      key: string,
      parse: (reply: unknown) => A | undefined,
      reply: unknown
    ): Exit.Exit<A, LeaseError.LeaseError> => {
      const value = parse(reply)
      return value === undefined
        ? Exit.fail(unavailable(operation, key, new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`)))
        : Exit.succeed(value)
    }
  }
}

/** The errors of `commandErrors`. */
export type CommandErrors = ReturnType<typeof commandErrors>

/**
 * Bounds one Redis command by `timeout` (a race with a timer: for the occasional command; a store bounds its own
 * with one watchdog) and maps what goes wrong as `commandErrors` does.
 */
export const boundedCommand =
  (timeout: Duration.Duration, operation: string, key: string) =>
  <A>(
    command: Effect.Effect<unknown, Redis.RedisError>,
    parse: (reply: unknown) => A | undefined
  ): Effect.Effect<A, LeaseError.LeaseError> => {
    const errors = commandErrors(timeout)
    return command.pipe(
      Effect.mapError((error) => errors.unavailable(operation, key, error.cause)),
      Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(errors.timedOut(operation, key)) }),
      Effect.flatMap((reply) => errors.parsed(operation, key, parse, reply))
    )
  }
