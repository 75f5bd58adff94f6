import { Duration, Effect, Exit } from "effect"
import type * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../../LeaseError.ts"
import type { RedisTransport, SendOptions, Topology } from "../../RedisTransport.ts"
import { type CommandErrors, commandErrors } from "./boundedCommand.ts"
import { type CommandWatchdog, make as makeWatchdog } from "./commandWatchdog.ts"

/**
 * How the Redis store sends its commands, each bounded by the command timeout and each failure, timeout or
 * unexpected reply mapped to `StoreUnavailable`.
 *
 * Two paths, one contract:
 * - a `RedisTransport` (leasehold's seam, provided by the client packages' layers): a command is a Promise the lease
 *   operation waits on directly, no fiber per command, routed by the transport to the node that serves its key;
 * - the generic `Redis` service otherwise (`send` returns an Effect, so a bound needs a fiber to run the command in).
 * Scripts are sent as `EVALSHA` with a SHA-1 computed here, and as `EVAL` when Redis answers `NOSCRIPT` (after a
 * restart, a `SCRIPT FLUSH`, or on a cluster node that has not seen the script yet), so no operation needs a
 * `SCRIPT LOAD` round trip first.
 */
export interface RedisCommands {
  /** Sends one command; `route` is the Redis key whose node must get it (any node when `undefined`). */
  readonly send: <A>(
    operation: string,
    key: string,
    args: ReadonlyArray<string>,
    parse: (reply: unknown) => A | undefined,
    route?: string | undefined
  ) => Effect.Effect<A, LeaseError.LeaseError>
  /** Runs a script on the node that serves its first key. */
  readonly evalScript: <A>(
    operation: string,
    key: string,
    script: LuaScript,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    parse: (reply: unknown) => A | undefined
  ) => Effect.Effect<A, LeaseError.LeaseError>
  /** The topology the transport reports; `undefined` over the generic service (the store asks the server). */
  readonly topology: Topology | undefined
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
 * Makes the command sender of a Redis store, for the life of the scope: over `transport` when there is one, else
 * over `redis`. When the scope closes, commands fail at once without being sent, and the transport's client is left
 * holding none of the store's commands (see `settleAtClose`).
 */
export const make = Effect.fnUntraced(function* (
  redis: Redis.Redis["Service"],
  transport: RedisTransport | undefined,
  timeout: Duration.Duration
) {
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
  if (transport === undefined) {
    yield* closeWith(Effect.void)
    return serviceCommands(redis, watchdog, errors, state)
  }
  const sent = makeSentCommands(timeoutMillis)
  yield* closeWith(settleAtClose(transport, sent))
  return transportCommands(transport, watchdog, errors, state, sent)
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
 * sent while the client was reconnecting has left the client's queue at its bound (see `transportCommands`); one that
 * is still queued then, for whatever reason, is dropped with the rest.
 */
const settleAtClose = (transport: RedisTransport, sent: SentCommands) =>
  Effect.flatMap(sent.drained, (drained) =>
    drained
      ? Effect.void
      : Effect.sync(() => transport.destroy()).pipe(
          Effect.andThen(
            Effect.logWarning(
              `leasehold: Redis did not answer the store's last commands within the command timeout; the ${transport.name} client was destroyed so that closing it cannot hang`
            )
          )
        )
  )

/**
 * Sends `args` to the node of `route`; if Redis answers `NOSCRIPT` and there is a `fallback`, sends the command it
 * makes instead (made only then: it carries the whole script); reads the reply with `parse`. All of it within one
 * command timeout.
 */
type Run = <A>(
  operation: string,
  key: string,
  route: string | undefined,
  args: ReadonlyArray<string>,
  fallback: (() => ReadonlyArray<string>) | undefined,
  parse: (reply: unknown) => A | undefined
) => Effect.Effect<A, LeaseError.LeaseError>

const fromRun = (run: Run, topology: Topology | undefined): RedisCommands => ({
  topology,
  send: (operation, key, args, parse, route) => run(operation, key, route, args, undefined, parse),
  evalScript: (operation, key, script, keys, args, parse) => {
    const evalSha = ["EVALSHA", script.sha1, String(keys.length), ...keys, ...args]
    return run(operation, key, keys[0], evalSha, () => ["EVAL", script.lua, ...evalSha.slice(2)], parse)
  }
})

const isNoScript = (error: unknown): boolean => String(error).includes("NOSCRIPT")

/** The options of a command sent while the transport is ready: no signal (see `transportCommands`). */
const noSignal: SendOptions = {}

/**
 * Over a transport: one `Effect.callback` per command, which the watchdog can end; no fiber of its own.
 *
 * A command sent while the transport is not ready (its client is reconnecting, and may queue commands) is sent with
 * an `AbortSignal` that the watchdog fires at its bound, which takes it out of the client's queue, so it can neither
 * keep a close waiting nor reach Redis long after its caller gave up (an acquire landing after the reconnect would
 * lock the key for a token nobody holds). A command sent while the transport is ready is written in the same turn
 * of the event loop and gets no signal: an abort would find it written, and a signal costs CPU on every command
 * (docs/performance.md). Only a connection that drops within that turn, or a socket too full to take more, leaves
 * such a command queued. A command already written stays until its reply or the connection's end; commands on a
 * connection keep their order, so a late renew is always followed by the release sent after it.
 */
const transportCommands = (
  transport: RedisTransport,
  watchdog: CommandWatchdog,
  errors: CommandErrors,
  state: StoreState,
  sent: SentCommands
): RedisCommands =>
  fromRun(
    (operation, key, route, args, fallback, parse) =>
      Effect.callback((resume) => {
        if (state.closed) return resume(Exit.fail(errors.closed(operation, key)))
        const abort = transport.isReady() ? undefined : new AbortController()
        const options = abort === undefined ? noSignal : { signal: abort.signal }
        const untrack = watchdog.track(() => {
          resume(Exit.fail(errors.timedOut(operation, key)))
          abort?.abort()
        })
        sent.add()
        const first = transport.send(route, args, options)
        const replied =
          fallback === undefined
            ? first
            : first.catch((error) =>
                isNoScript(error) ? transport.send(route, fallback(), options) : Promise.reject(error)
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
      }),
    transport.topology
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
  return fromRun((operation, key, _route, args, fallback, parse) => {
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
  }, undefined)
}
