import { Context, Duration, Effect, Exit } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../LeaseError.ts"
import { type CommandErrors, commandErrors } from "./boundedCommand.ts"
import { type CommandWatchdog, make as makeWatchdog } from "./commandWatchdog.ts"

/**
 * How the Redis store sends its commands, each bounded by the command timeout and each failure, timeout or
 * unexpected reply mapped to `StoreUnavailable`.
 *
 * Two transports, one contract:
 * - the generic `Redis` service (`send` returns an Effect, so a bound needs a fiber to run the command in);
 * - the node-redis client behind it, when the context also holds `@effect/platform-node`'s `NodeRedis` service for
 *   the very same connection (checked with `CLIENT INFO` at start). A command is then a Promise the lease operation
 *   waits on directly: no fiber per command, and no timer of the client's own (see `withoutClientTimer`).
 * Scripts are sent as `EVALSHA` with a SHA-1 computed here, and as `EVAL` when Redis answers `NOSCRIPT` (after a
 * restart or a `SCRIPT FLUSH`), so no operation needs a `SCRIPT LOAD` round trip first.
 */
export interface RedisCommands {
  readonly send: <A>(
    operation: string,
    key: string,
    args: ReadonlyArray<string>,
    parse: (reply: unknown) => A | undefined
  ) => Effect.Effect<A, LeaseError.LeaseError>
  readonly evalScript: <A>(
    operation: string,
    key: string,
    script: LuaScript,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    parse: (reply: unknown) => A | undefined
  ) => Effect.Effect<A, LeaseError.LeaseError>
  /** The client the commands go through (node-redis, or a wrapper of it); `undefined` over the generic service. */
  readonly client: unknown
}

/** A Lua script and its SHA-1 (hex), the name `EVALSHA` knows it by. */
export interface LuaScript {
  readonly lua: string
  readonly sha1: string
}

/** Computes a script's SHA-1 with Web Crypto (no round trip, no Node-only API). */
export const luaScript = (lua: string): Effect.Effect<LuaScript> =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-1", new TextEncoder().encode(lua))).pipe(
    Effect.map((digest) => ({
      lua,
      sha1: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("")
    }))
  )

/** What leasehold needs of a node-redis client: `sendCommand`. */
export interface CommandClient {
  readonly sendCommand: (args: Array<string>, options?: { readonly timeout?: number }) => Promise<unknown>
}

/**
 * node-redis (6.x) bounds each command with a timer of its own (`AbortSignal.timeout`, 5 s by default) that lives
 * on after the reply: at tens of thousands of commands a second it costs more than the rest of the command. The
 * watchdog already bounds leasehold's commands, so they are sent without it (`timeout: 0`); the client's other
 * command options still apply. A command whose caller timed out stays in the client's queue until its reply or the
 * connection's end, as it would after the client's own timeout, and commands on a connection keep their order, so a
 * late renew is always followed by the release sent after it.
 */
const withoutClientTimer = { timeout: 0 } as const

/**
 * `@effect/platform-node`'s `NodeRedis` service, seen by its key and structurally: leasehold depends on `effect`
 * alone, and only uses the client when `CLIENT INFO` proves it is the `Redis` service's own connection.
 */
const NodeRedisClient = Context.Service<{ readonly client?: unknown }>("@effect/platform-node/NodeRedis")

const isCommandClient = (client: unknown): client is CommandClient =>
  typeof client === "object" && client !== null && typeof (client as CommandClient).sendCommand === "function"

/**
 * Makes the command sender of a Redis store: over the node-redis client when the context has one for the same
 * connection as `redis`, else over `redis`.
 */
export const make = Effect.fnUntraced(function* (redis: Redis.Redis["Service"], timeout: Duration.Duration) {
  const watchdog = makeWatchdog(Duration.toMillis(timeout))
  const errors = commandErrors(timeout)
  const overService = serviceCommands(redis, watchdog, errors)
  const nodeRedis = yield* Effect.serviceOption(NodeRedisClient)
  if (nodeRedis._tag === "None" || !isCommandClient(nodeRedis.value.client)) return overService
  const direct = { ...clientCommands(nodeRedis.value.client, watchdog, errors), client: nodeRedis.value.client }
  return (yield* sameConnection(overService, direct)) ? direct : overService
})

/**
 * Sends `args`; if Redis answers `NOSCRIPT` and there is a `fallback`, sends the command it makes instead (made only
 * then: it carries the whole script); reads the reply with `parse`. All of it within one command timeout.
 */
type Run = <A>(
  operation: string,
  key: string,
  args: ReadonlyArray<string>,
  fallback: (() => ReadonlyArray<string>) | undefined,
  parse: (reply: unknown) => A | undefined
) => Effect.Effect<A, LeaseError.LeaseError>

const fromRun = (run: Run): RedisCommands => ({
  client: undefined,
  send: (operation, key, args, parse) => run(operation, key, args, undefined, parse),
  evalScript: (operation, key, script, keys, args, parse) => {
    const evalSha = ["EVALSHA", script.sha1, String(keys.length), ...keys, ...args]
    return run(operation, key, evalSha, () => ["EVAL", script.lua, ...evalSha.slice(2)], parse)
  }
})

const isNoScript = (error: unknown): boolean => String(error).includes("NOSCRIPT")

/**
 * Over the node-redis client: one `Effect.callback` per command, which the watchdog can end; no fiber of its own.
 */
const clientCommands = (client: CommandClient, watchdog: CommandWatchdog, errors: CommandErrors): RedisCommands =>
  fromRun((operation, key, args, fallback, parse) =>
    Effect.callback((resume) => {
      const untrack = watchdog.track(() => resume(Exit.fail(errors.timedOut(operation, key))))
      const sent = client.sendCommand(args as Array<string>, withoutClientTimer)
      const replied =
        fallback === undefined
          ? sent
          : sent.catch((error) =>
              isNoScript(error)
                ? client.sendCommand(fallback() as Array<string>, withoutClientTimer)
                : Promise.reject(error)
            )
      replied.then(
        (reply) => {
          untrack()
          resume(errors.parsed(operation, key, parse, reply))
        },
        (error) => {
          untrack()
          resume(Exit.fail(errors.unavailable(operation, key, error)))
        }
      )
    })
  )

/**
 * The command sender of a Redis store over `client` directly: for a client that wraps the connection the store
 * found (`RedisCommands.client`), such as one with a standby connection.
 */
export const overClient = (client: CommandClient, timeout: Duration.Duration): RedisCommands => ({
  ...clientCommands(client, makeWatchdog(Duration.toMillis(timeout)), commandErrors(timeout)),
  client
})

/** Over the generic `Redis` service: each command runs in a fiber the watchdog can interrupt. */
const serviceCommands = (
  redis: Redis.Redis["Service"],
  watchdog: CommandWatchdog,
  errors: CommandErrors
): RedisCommands => {
  const once = (operation: string, key: string, args: ReadonlyArray<string>) =>
    Effect.mapError(
      watchdog.bound(redis.send(args[0]!, ...args.slice(1)), () => errors.timedOut(operation, key)),
      // The service wraps client errors in `RedisError { cause }`: report the client's own error.
      (error) => (error instanceof LeaseError.LeaseError ? error : errors.unavailable(operation, key, error.cause))
    )
  return fromRun((operation, key, args, fallback, parse) => {
    const sent = once(operation, key, args)
    const replied =
      fallback === undefined
        ? sent
        : Effect.catchIf(
            sent,
            (error) => error.reason._tag === "StoreUnavailable" && isNoScript(error.reason.cause),
            () => once(operation, key, fallback())
          )
    return Effect.flatMap(replied, (reply) => errors.parsed(operation, key, parse, reply))
  })
}

/**
 * Whether two senders use one connection: both answer `CLIENT INFO` with the same client id and the same local and
 * remote addresses (an id alone is only unique within one server). `false` if either cannot tell.
 */
const sameConnection = (a: RedisCommands, b: RedisCommands): Effect.Effect<boolean> => {
  const probe = (commands: RedisCommands) => commands.send("start", "CLIENT INFO", ["CLIENT", "INFO"], connectionOf)
  return Effect.all([probe(a), probe(b)], { concurrency: "unbounded" }).pipe(
    Effect.map(([x, y]) => x === y),
    Effect.orElseSucceed(() => false)
  )
}

/** `id`, `addr` and `laddr` of a `CLIENT INFO` reply: which connection it is. */
const connectionOf = (info: unknown): string | undefined => {
  if (typeof info !== "string") return undefined
  const fields = new Map(
    info
      .trim()
      .split(" ")
      .map((field) => field.split("=", 2) as [string, string])
  )
  const id = fields.get("id")
  const addr = fields.get("addr")
  const laddr = fields.get("laddr")
  return id && addr && laddr ? `${id} ${addr} ${laddr}` : undefined
}
