import { Context, Duration, Effect, Exit } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../LeaseError.ts"
import { type CommandErrors, commandErrors } from "./boundedCommand.ts"
import { type CommandWatchdog, make as makeWatchdog } from "./commandWatchdog.ts"
import * as RedisConnections from "./redisConnections.ts"

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
  /** The node-redis client the commands go through; `undefined` over the generic service. */
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

/**
 * What leasehold needs of a node-redis client: `sendCommand`; `isReady`, whether a command sent now is written at
 * once; and `destroy`, for a connection that stopped answering.
 */
interface CommandClient {
  readonly sendCommand: (
    args: Array<string>,
    options?: { readonly timeout?: number; readonly abortSignal?: AbortSignal }
  ) => Promise<unknown>
  readonly isReady: boolean
  readonly destroy: () => void
}

/** The options of a command sent while the client is ready: without the client's own timer (see `clientCommands`). */
const withoutClientTimer = { timeout: 0 } as const

/**
 * `@effect/platform-node`'s `NodeRedis` service, seen by its key and structurally: leasehold depends on `effect`
 * alone, and only uses the client when `CLIENT INFO` proves it is the `Redis` service's own connection.
 */
const NodeRedisClient = Context.Service<{ readonly client?: unknown }>("@effect/platform-node/NodeRedis")

const isCommandClient = (client: unknown): client is CommandClient =>
  typeof client === "object" &&
  client !== null &&
  typeof (client as CommandClient).sendCommand === "function" &&
  typeof (client as CommandClient).isReady === "boolean" &&
  typeof (client as CommandClient).destroy === "function"

/**
 * Makes the command sender of a Redis store, for the life of the scope: over the node-redis client when the context
 * has one for the same connection as `redis`, else over `redis`. When the scope closes, commands fail at once
 * without being sent, and the node-redis client is left holding none of the store's commands (see `settleAtClose`).
 */
export const make = Effect.fnUntraced(function* (redis: Redis.Redis["Service"], timeout: Duration.Duration) {
  const timeoutMillis = Duration.toMillis(timeout)
  const watchdog = makeWatchdog(timeoutMillis)
  const errors = commandErrors(timeout)
  const state: StoreState = { closed: false }
  const closeWith = (settle: Effect.Effect<void>) =>
    Effect.addFinalizer(() =>
      Effect.andThen(
        Effect.sync(() => {
          state.closed = true
        }),
        settle
      )
    )
  const overService = serviceCommands(redis, watchdog, errors, state)
  const nodeRedis = yield* Effect.serviceOption(NodeRedisClient)
  const client = nodeRedis._tag === "Some" ? nodeRedis.value.client : undefined
  if (!isCommandClient(client)) return yield* Effect.as(closeWith(Effect.void), overService)
  const sent = makeSentCommands(timeoutMillis)
  const direct = clientCommands(client, watchdog, errors, state, sent)
  if (!(yield* sameConnection(overService, direct))) return yield* Effect.as(closeWith(Effect.void), overService)
  // While the client reconnects, commands go over a standby connection of the store's own (see `withStandby`).
  // Registered first, closed last: the close below waits for the commands in flight on either connection.
  const standby = RedisConnections.isNodeClient(client)
    ? RedisConnections.withStandby(client, timeoutMillis)
    : undefined
  if (standby !== undefined) yield* Effect.addFinalizer(() => Effect.sync(standby.close))
  yield* closeWith(settleAtClose(client, sent))
  if (standby === undefined) return { ...direct, client }
  const sender: CommandClient = {
    sendCommand: standby.sendCommand,
    get isReady() {
      return client.isReady
    },
    destroy: () => client.destroy()
  }
  return { ...clientCommands(sender, watchdog, errors, state, sent), client }
})

/** Whether the store's scope has closed: from then on its commands fail without being sent. */
interface StoreState {
  closed: boolean
}

/** The store's commands still in the client (sent, neither answered nor failed), and when the last one was sent. */
interface SentCommands {
  readonly add: () => void
  readonly settle: () => void
  /** Completes once none is left, or once the last of them is past its bound; `true` if none is left. */
  readonly drained: Effect.Effect<boolean>
}

const makeSentCommands = (timeoutMillis: number): SentCommands => {
  let unsettled = 0
  let lastSentAt = 0
  let onEmpty: (() => void) | undefined
  return {
    add: () => {
      unsettled++
      lastSentAt = performance.now()
    },
    settle: () => {
      if (--unsettled === 0) onEmpty?.()
    },
    drained: Effect.callback<boolean>((resume) => {
      if (unsettled === 0) return resume(Effect.succeed(true))
      const finish = () => {
        clearTimeout(timer)
        onEmpty = undefined
        resume(Effect.succeed(unsettled === 0))
      }
      // A referenced timer: the process must stay up until the close is decided, whatever else has ended.
      const timer = setTimeout(finish, Math.max(0, lastSentAt + timeoutMillis - performance.now()))
      onEmpty = finish
      return Effect.sync(() => {
        clearTimeout(timer)
        onEmpty = undefined
      })
    })
  }
}

/**
 * When the store closes: waits for its commands still in the client, each at most until its bound; if one of them is
 * still unanswered after that, the connection has not answered for a whole command timeout, and the client is
 * destroyed. `NodeRedis`'s finalizer is `client.close()`, which waits for the reply to every command still in the
 * client for as long as Redis stays silent (paused, partitioned, answering bytes it cannot read), and never settles at
 * all if the connection dies meanwhile (node-redis 6.3 then flushes the commands but never ends the close): with
 * nothing else left in the event loop, the process would exit with code 0 and the program's result lost. A command
 * sent while the client was reconnecting has left the client's queue at its bound (see `clientCommands`); one that
 * is still queued then, for whatever reason, is dropped with the rest.
 */
const settleAtClose = (client: CommandClient, sent: SentCommands) =>
  Effect.flatMap(sent.drained, (drained) =>
    drained
      ? Effect.void
      : Effect.sync(() => client.destroy()).pipe(
          Effect.andThen(
            Effect.logWarning(
              "leasehold: Redis did not answer the store's last commands within the command timeout; the node-redis client was destroyed so that closing it cannot hang"
            )
          )
        )
  )

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
 *
 * A command sent while the client is not ready (it is reconnecting, and its offline queue is on) waits in the
 * client's queue: it is sent with an `AbortSignal` that the watchdog fires at its bound, which takes it out of the
 * queue, so it can neither keep a close waiting nor reach Redis long after its caller gave up (an acquire landing
 * after the reconnect would lock the key for a token nobody holds). A command sent while the client is ready is
 * written in the same turn of the event loop and gets no signal: an abort would find it written, and a signal costs
 * CPU on every command (docs/performance.md). Only a connection that drops within that turn, or a socket too full
 * to take more, leaves such a command queued. A command already written stays until its reply or the connection's
 * end; commands on a connection keep their order, so a late renew is always followed by the release sent after it.
 *
 * The client's own per-command timer is off (`timeout: 0`): it is an `AbortSignal.timeout` that lives 5 s after every
 * command, costly at tens of thousands of commands a second, and it too only ever ends a command not yet written.
 */
const clientCommands = (
  client: CommandClient,
  watchdog: CommandWatchdog,
  errors: CommandErrors,
  state: StoreState,
  sent: SentCommands
): RedisCommands =>
  fromRun((operation, key, args, fallback, parse) =>
    Effect.callback((resume) => {
      if (state.closed) return resume(Exit.fail(errors.closed(operation, key)))
      const abort = client.isReady ? undefined : new AbortController()
      const options = abort === undefined ? withoutClientTimer : { timeout: 0, abortSignal: abort.signal }
      const untrack = watchdog.track(() => {
        resume(Exit.fail(errors.timedOut(operation, key)))
        abort?.abort()
      })
      sent.add()
      const first = client.sendCommand(args as Array<string>, options)
      const replied =
        fallback === undefined
          ? first
          : first.catch((error) =>
              isNoScript(error) ? client.sendCommand(fallback() as Array<string>, options) : Promise.reject(error)
            )
      replied.then(
        (reply) => {
          untrack()
          sent.settle()
          resume(errors.parsed(operation, key, parse, reply))
        },
        (error) => {
          untrack()
          sent.settle()
          resume(Exit.fail(errors.unavailable(operation, key, error)))
        }
      )
    })
  )

/** Over the generic `Redis` service: each command runs in a fiber the watchdog can interrupt. */
const serviceCommands = (
  redis: Redis.Redis["Service"],
  watchdog: CommandWatchdog,
  errors: CommandErrors,
  state: StoreState
): RedisCommands => {
  const once = (operation: string, key: string, args: ReadonlyArray<string>) =>
    Effect.mapError(
      watchdog.bound(redis.send(args[0]!, ...args.slice(1)), () => errors.timedOut(operation, key)),
      // The service wraps client errors in `RedisError { cause }`: report the client's own error.
      (error) => (error instanceof LeaseError.LeaseError ? error : errors.unavailable(operation, key, error.cause))
    )
  return fromRun((operation, key, args, fallback, parse) => {
    const sent = Effect.suspend(() =>
      state.closed ? Effect.fail(errors.closed(operation, key)) : once(operation, key, args)
    )
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
