import { Cause, Context, Duration, Effect, Exit } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../LeaseError.ts"
import { type CommandWatchdog, make as makeWatchdog } from "./commandWatchdog.ts"

/**
 * How the Redis store sends its commands, each bounded by the command timeout and each failure, timeout or
 * unexpected reply mapped to `StoreUnavailable`.
 *
 * Two transports, one contract:
 * - the generic `Redis` service (`send` returns an Effect, so a bound needs a fiber to run the command in);
 * - the node-redis client behind it, when the context also holds `@effect/platform-node`'s `NodeRedis` service for
 *   the very same connection (checked with `CLIENT INFO` at start). A command is then a Promise the lease operation
 *   waits on directly: no fiber per command. This roughly halves the store's CPU per operation.
 * Scripts are sent as `EVALSHA` with a SHA-1 computed here, and as `EVAL` when Redis answers `NOSCRIPT` (after a
 * restart or a `SCRIPT FLUSH`), so no operation needs a `SCRIPT LOAD` round trip first.
 */
export interface RedisCommands {
  /** `"client"` when commands go to the node-redis client directly, `"service"` when through `Redis`. */
  readonly transport: "client" | "service"
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
interface CommandClient {
  readonly sendCommand: (args: Array<string>) => Promise<unknown>
}

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
  const bounded = boundWith(watchdog, timeout)
  const overService: Transport = (args) => redis.send(args[0]!, ...args.slice(1))
  const client = yield* sameConnectionClient(redis, bounded)
  return client === undefined ? commands("service", overService, bounded) : commands("client", client, bounded)
})

/** A way to send one command: an Effect (the `Redis` service) or a client whose `sendCommand` returns a Promise. */
type Transport = ((args: ReadonlyArray<string>) => Effect.Effect<unknown, unknown>) | CommandClient

type Bound = (
  operation: string,
  key: string,
  transport: Transport,
  args: ReadonlyArray<string>
) => Effect.Effect<unknown, LeaseError.LeaseError>

/**
 * The node-redis client of the context, if it is the connection `redis` sends on: both answer `CLIENT INFO` with the
 * same client id and the same local and remote addresses (an id alone is only unique within one server).
 */
const sameConnectionClient = (redis: Redis.Redis["Service"], bounded: Bound) =>
  Effect.gen(function* () {
    const service = yield* Effect.serviceOption(NodeRedisClient)
    if (service._tag === "None" || !isCommandClient(service.value.client)) return undefined
    const client = service.value.client
    const probe = ["CLIENT", "INFO"]
    const infos = yield* Effect.all(
      [
        bounded("start", "CLIENT INFO", (args) => redis.send(args[0]!, ...args.slice(1)), probe),
        bounded("start", "CLIENT INFO", client, probe)
      ],
      { concurrency: "unbounded" }
    ).pipe(Effect.option)
    if (infos._tag === "None") return undefined
    const [viaService, viaClient] = infos.value.map(connectionOf)
    return viaService !== undefined && viaService === viaClient ? client : undefined
  })

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

const boundWith =
  (watchdog: CommandWatchdog, timeout: Duration.Duration): Bound =>
  (operation, key, transport, args) => {
    const unavailable = (cause: unknown) => LeaseError.make(new LeaseError.StoreUnavailable({ operation, key, cause }))
    const timedOut = () => unavailable(new Cause.TimeoutError(`no reply from Redis within ${Duration.format(timeout)}`))
    if (typeof transport === "function") {
      return Effect.mapError(watchdog.bound(transport(args), timedOut), (error) =>
        error instanceof LeaseError.LeaseError ? error : unavailable(causeOf(error))
      )
    }
    return Effect.callback<unknown, LeaseError.LeaseError>((resume) => {
      const untrack = watchdog.track(() => resume(Effect.fail(timedOut())))
      transport.sendCommand(args as Array<string>).then(
        (reply) => {
          untrack()
          resume(Exit.succeed(reply))
        },
        (error) => {
          untrack()
          resume(Exit.fail(unavailable(error)))
        }
      )
    })
  }

/** The `Redis` service wraps client errors in `RedisError { cause }`: report the client's own error. */
const causeOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "cause" in error ? (error as { cause: unknown }).cause : error

const isNoScript = (error: LeaseError.LeaseError): boolean =>
  error.reason._tag === "StoreUnavailable" && String(error.reason.cause).includes("NOSCRIPT")

const commands = (kind: "client" | "service", transport: Transport, bounded: Bound): RedisCommands => {
  const parsed =
    <A>(operation: string, key: string, parse: (reply: unknown) => A | undefined) =>
    (reply: unknown): Effect.Effect<A, LeaseError.LeaseError> => {
      const value = parse(reply)
      return value === undefined
        ? Effect.fail(
            LeaseError.make(
              new LeaseError.StoreUnavailable({
                operation,
                key,
                cause: new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`)
              })
            )
          )
        : Effect.succeed(value)
    }
  return {
    transport: kind,
    send: (operation, key, args, parse) =>
      Effect.flatMap(bounded(operation, key, transport, args), parsed(operation, key, parse)),
    evalScript: (operation, key, script, keys, args, parse) => {
      const tail = [String(keys.length), ...keys, ...args]
      return bounded(operation, key, transport, ["EVALSHA", script.sha1, ...tail]).pipe(
        Effect.catchIf(isNoScript, () => bounded(operation, key, transport, ["EVAL", script.lua, ...tail])),
        Effect.flatMap(parsed(operation, key, parse))
      )
    }
  }
}
