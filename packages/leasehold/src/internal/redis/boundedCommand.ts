import { Cause, Duration, Effect, Exit } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../../LeaseError.ts"

/** How much of a reply a message shows: enough to recognise it, never the whole of a huge one. */
const previewChars = 200

/**
 * The start of `value` as text, at most about `budget` characters, with what was left out counted: a reply can be a
 * 64 MiB string (a lease field written by something else), and it must not be copied into a message or a log.
 */
export const preview = (value: unknown, budget = previewChars): string => {
  if (typeof value === "string") {
    if (value.length <= budget) return JSON.stringify(value)
    return `${JSON.stringify(value.slice(0, budget))}… (${value.length} characters)`
  }
  if (value instanceof Uint8Array) return `<${value.length} bytes>`
  if (Array.isArray(value)) {
    const parts: Array<string> = []
    let left = budget
    for (const item of value) {
      if (left <= 0) {
        parts.push(`… (${value.length} items)`)
        break
      }
      const part = preview(item, left)
      parts.push(part)
      left -= part.length + 1
    }
    return `[${parts.join(",")}]`
  }
  if (value === null || typeof value !== "object") return String(value)
  return `<${value.constructor?.name ?? "object"}>`
}

/**
 * A reply of a shape the operation does not expect. The message shows only the start of it (`preview`); the whole
 * reply is kept in `reply`, for those who ask, and left out of what `util.inspect` and loggers print.
 */
export class UnexpectedReply extends Error {
  declare readonly reply: unknown
  constructor(reply: unknown) {
    super(`unexpected reply from Redis: ${preview(reply)}`)
    this.name = "UnexpectedReply"
    Object.defineProperty(this, "reply", { value: reply, enumerable: false })
  }
}

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
    /** A command asked of a store whose layer has closed: it is not sent. */
    closed: (operation: string, key: string) =>
      unavailable(operation, key, new Error("the lease store's layer has closed; the command was not sent")),
    /** The parsed reply, or `StoreUnavailable` for a reply of an unexpected shape. */
    parsed: <A>(
      operation: string,
      key: string,
      parse: (reply: unknown) => A | undefined,
      reply: unknown
    ): Exit.Exit<A, LeaseError.LeaseError> => {
      const value = parse(reply)
      return value === undefined
        ? Exit.fail(unavailable(operation, key, new UnexpectedReply(reply)))
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
