/**
 * The primitive, atomic lease operations, one round trip each, and the two stores that implement them: Redis
 * (`layerRedis`, one Lua script per operation) and memory (`layerMemory`, one process, time from Effect's `Clock`
 * so `TestClock` drives it). Both are held to the same contract tests. Most programs use `Lease`, which adds
 * validation, tokens, waiting and auto-renew on top; implement this service to put leases somewhere else.
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { Lease, LeaseStore } from "leasehold"
 *
 * const LeaseLive = Lease.layer.pipe(
 *   Layer.provide(LeaseStore.layerRedis({ prefix: "lease:" })),
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { type Cause, Context, Duration, Effect, Layer, Option, Queue, type Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { commandErrors } from "./internal/boundedCommand.ts"
import * as RedisCommands from "./internal/redisCommands.ts"
import * as RedisConnections from "./internal/redisConnections.ts"
import * as LeaseError from "./LeaseError.ts"
import type { LeaseKey } from "./LeaseKey.ts"
import type { LeaseToken } from "./LeaseToken.ts"

/**
 * The store's answer to an acquire: the lease was created (with its fence and the store's time of creation), or
 * another token holds the key (with the time it has left and its owner metadata, as stored). A key with no expiry
 * in the store (written by something other than leasehold) has `remainingMillis: Infinity`.
 *
 * @category models
 * @since 0.1.0
 */
export type AcquireReply =
  | { readonly _tag: "Acquired"; readonly fence: bigint; readonly acquiredAt: number }
  | { readonly _tag: "Held"; readonly remainingMillis: number; readonly owner: string | undefined }

/**
 * The store's answer to a renew: renewed, gone (`expired`), or held by another token (`stolen`).
 *
 * @category models
 * @since 0.1.0
 */
export type RenewReply = "renewed" | "expired" | "stolen"

/**
 * One lease to renew in `renewMany`.
 *
 * @category models
 * @since 0.1.0
 */
export interface RenewRequest {
  readonly key: LeaseKey
  readonly token: LeaseToken
  readonly ttlMillis: number
}

/**
 * A read-only view of a held key (`remainingMillis: Infinity` for a key without expiry).
 *
 * @category models
 * @since 0.1.0
 */
export interface Snapshot {
  readonly remainingMillis: number
  readonly owner: string | undefined
  readonly fence: bigint
  readonly acquiredAt: number
}

/**
 * The store interface. Every operation is atomic and takes one round trip; expiry is the store's own.
 * `owner` is the owner metadata already encoded as a string. `id` names this store instance, so that a lease is
 * only ever renewed or released through the store that granted it.
 *
 * @category models
 * @since 0.1.0
 */
export interface LeaseStore {
  readonly id: string
  /**
   * The longest any one operation can take before it fails (the Redis store's command timeout; `0` for the memory
   * store, which answers at once). Optional: waiting bounds each try by its own timer when it is not given, and
   * skips that timer when the wait budget left is longer than this.
   */
  readonly maxOperationMillis?: number | undefined
  readonly acquire: (
    key: LeaseKey,
    token: LeaseToken,
    ttlMillis: number,
    owner: string | undefined
  ) => Effect.Effect<AcquireReply, LeaseError.LeaseError>
  readonly renew: (
    key: LeaseKey,
    token: LeaseToken,
    ttlMillis: number
  ) => Effect.Effect<RenewReply, LeaseError.LeaseError>
  /**
   * Renews several leases together, for a renewer that batches what is due: the replies in order. The Redis store
   * sends one script for up to 512 leases; the memory store renews each.
   */
  readonly renewMany: (
    leases: ReadonlyArray<RenewRequest>
  ) => Effect.Effect<ReadonlyArray<RenewReply>, LeaseError.LeaseError>
  readonly release: (key: LeaseKey, token: LeaseToken) => Effect.Effect<boolean, LeaseError.LeaseError>
  readonly isHeld: (key: LeaseKey, token: LeaseToken) => Effect.Effect<boolean, LeaseError.LeaseError>
  readonly inspect: (key: LeaseKey) => Effect.Effect<Option.Option<Snapshot>, LeaseError.LeaseError>
  /**
   * Listens for releases (by any client) for the life of the scope: a queue of `ReleaseEvent`s. It succeeds once
   * releases are being heard, so a release after that point is announced, or else an `Interrupted` (then a
   * `Resumed`) says that it may have been missed, as far as the store can tell. The queue ends (`Done`) if the
   * listening stops for good.
   */
  readonly watchReleases: Effect.Effect<Queue.Dequeue<ReleaseEvent, Cause.Done>, LeaseError.LeaseError, Scope.Scope>
}

/**
 * What a release watch hears:
 * - `Released`: a lease of `key` was released, with the fence of that lease (`undefined` when a store cannot tell);
 * - `Interrupted`: the announcements stopped (for example the subscriber's connection dropped): releases from now
 *   on may go unheard until `Resumed`;
 * - `Resumed`: they are heard again. Any release in between was missed: a waiter should try at once.
 *
 * @category models
 * @since 0.1.0
 */
export type ReleaseEvent =
  | { readonly _tag: "Released"; readonly key: string; readonly fence: bigint | undefined }
  | { readonly _tag: "Interrupted" }
  | { readonly _tag: "Resumed" }

/**
 * The store service.
 *
 * @category services
 * @since 0.1.0
 */
export const LeaseStore: Context.Service<LeaseStore, LeaseStore> = Context.Service<LeaseStore>("leasehold/LeaseStore")

const storeId = (kind: string): string =>
  `${kind}:${Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`

// ---------------------------------------------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------------------------------------------

interface MemoryEntry {
  readonly token: LeaseToken
  readonly owner: string | undefined
  readonly fence: bigint
  readonly acquiredAt: number
  expiresAt: number
}

/**
 * Makes an in-memory store: for one process and for tests. Time is read from Effect's `Clock` at each call, so a
 * `TestClock` moves expiry; fences survive the lease (as Redis's fence counter does), one counter per key ever
 * acquired.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<LeaseStore> = Effect.sync(() => {
  const entries = new Map<string, MemoryEntry>()
  const fences = new Map<string, bigint>()
  const watchers = new Set<Queue.Queue<ReleaseEvent, Cause.Done>>()
  let sweepAt = 1024

  const live = (key: string, now: number): MemoryEntry | undefined => {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt > now) return entry
    entries.delete(key)
    return undefined
  }

  const sweep = (now: number): void => {
    if (entries.size < sweepAt) return
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
    sweepAt = Math.max(1024, entries.size * 2)
  }

  const renewAt = (now: number, { key, token, ttlMillis }: RenewRequest): RenewReply => {
    const held = live(key, now)
    if (held === undefined) return "expired"
    if (held.token !== token) return "stolen"
    held.expiresAt = now + ttlMillis
    return "renewed"
  }

  const withNow = <A>(f: (now: number) => A): Effect.Effect<A> =>
    Effect.clockWith((clock) => Effect.sync(() => f(clock.currentTimeMillisUnsafe())))

  return LeaseStore.of({
    id: storeId("memory"),
    maxOperationMillis: 0,
    acquire: (key, token, ttlMillis, owner) =>
      withNow((now): AcquireReply => {
        const held = live(key, now)
        if (held !== undefined) return { _tag: "Held", remainingMillis: held.expiresAt - now, owner: held.owner }
        sweep(now)
        const fence = (fences.get(key) ?? 0n) + 1n
        fences.set(key, fence)
        entries.set(key, { token, owner, fence, acquiredAt: now, expiresAt: now + ttlMillis })
        return { _tag: "Acquired", fence, acquiredAt: now }
      }),
    renew: (key, token, ttlMillis) => withNow((now) => renewAt(now, { key, token, ttlMillis })),
    renewMany: (leases) => withNow((now) => leases.map((lease) => renewAt(now, lease))),
    release: (key, token) =>
      withNow((now) => {
        const held = live(key, now)
        if (held?.token !== token) return false
        entries.delete(key)
        for (const watcher of watchers) Queue.offerUnsafe(watcher, { _tag: "Released", key, fence: held.fence })
        return true
      }),
    isHeld: (key, token) => withNow((now) => live(key, now)?.token === token),
    inspect: (key) =>
      withNow((now) =>
        Option.map(Option.fromUndefinedOr(live(key, now)), (entry) => ({
          remainingMillis: entry.expiresAt - now,
          owner: entry.owner,
          fence: entry.fence,
          acquiredAt: entry.acquiredAt
        }))
      ),
    watchReleases: Effect.acquireRelease(
      Effect.tap(Queue.unbounded<ReleaseEvent, Cause.Done>(), (watcher) => Effect.sync(() => watchers.add(watcher))),
      (watcher) =>
        Effect.andThen(
          Effect.sync(() => watchers.delete(watcher)),
          Queue.shutdown(watcher)
        )
    )
  })
})

/**
 * An in-memory store for one process and for tests (see `makeMemory`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<LeaseStore> = Layer.effect(LeaseStore, makeMemory)

// ---------------------------------------------------------------------------------------------------------------
// redis
// ---------------------------------------------------------------------------------------------------------------

/**
 * Options of the Redis store.
 * - `prefix` (default `"lease:"`): put before each key's hash tag: `lease:{<key>}` and `lease:{<key>}:fence`. It
 *   must not contain `{` or `}` (the store fails with `InvalidOption`): a brace in the prefix would open or close
 *   the hash tag before the key's own.
 * - `commandTimeout` (default 2 seconds): the bound on each command. Redis that is down, paused or partitioned
 *   yields `StoreUnavailable` after this long instead of a hang.
 * - `batchRenewals` (default `true`): renew the leases that are due together in one script (up to 512 a call). A
 *   script's keys must share a slot on a Redis Cluster: turn it off for a `Redis` service that talks to a cluster
 *   (leases are then renewed one command each).
 *
 * @category models
 * @since 0.1.0
 */
export interface RedisOptions {
  readonly prefix?: string | undefined
  readonly commandTimeout?: Duration.Input | undefined
  readonly batchRenewals?: boolean | undefined
}

/**
 * The Redis hash tag of a key: `{<key>}`, with `%` and `}` percent-escaped (`%25`, `%7D`). Redis hashes only up to
 * the first `}` after the first `{`, so an unescaped `}` would cut the tag short (the lease and its fence in
 * different Cluster slots); escaping `%` as well keeps the encoding one-to-one, and a key without either keeps its
 * plain name. Use it to put a key of your own (a fenced resource) in the slot of a lease.
 *
 * @category redis
 * @since 0.1.0
 */
export const hashTag = (key: string): string => `{${key.replace(/[%}]/g, (c) => (c === "%" ? "%25" : "%7D"))}}`

/**
 * The Redis keys of one lease: the lease hash and its fence counter, in one cluster slot (same hash tag, see
 * `hashTag`). The prefix must hold no brace (`makeRedis` checks it).
 *
 * @category redis
 * @since 0.1.0
 */
export const redisKeys = (prefix: string, key: string) => {
  const lease = `${prefix}${hashTag(key)}`
  return { lease, fence: `${lease}:fence` }
}

/**
 * The pub/sub channel on which the Redis store announces releases; each message is `<fence>:<key>`, the fence of the
 * released lease and its key as given (not escaped: everything after the first `:`).
 *
 * @category redis
 * @since 0.1.0
 */
export const releaseChannel = (prefix: string): string => `${prefix}released`

/** Why a prefix cannot be used, or `undefined`: a brace would open or close the hash tag before the key's own. */
const prefixProblem = (prefix: string): string | undefined =>
  /[{}]/.test(prefix)
    ? `${JSON.stringify(prefix)} contains a brace ("{" or "}"), which would break the hash tag of every key; use a prefix without braces`
    : undefined

/** Reads a release announcement (`<fence>:<key>`); `undefined` for a message of another shape. */
const parseRelease = (message: string): { readonly key: string; readonly fence: bigint } | undefined => {
  const colon = message.indexOf(":")
  const fence = message.slice(0, colon)
  return colon > 0 && /^\d+$/.test(fence) ? { key: message.slice(colon + 1), fence: BigInt(fence) } : undefined
}

type Reply = ReadonlyArray<unknown>

/** The time a held key has left, from `PTTL`: `-1` means the key has no expiry. */
const remainingOf = (pttl: number): number => (pttl === -1 ? Number.POSITIVE_INFINITY : Math.max(0, pttl))

/**
 * Makes a Redis store over `effect/persistence/Redis` (see `RedisOptions`). Each operation is one `EVALSHA`.
 * Over node-redis (`NodeRedis` of `@effect/platform-node`), the store keeps connections of its own beside the
 * client's, for the life of the scope: a release subscriber, and a standby connection for its commands while the
 * client reconnects (see docs/redis.md, "Reconnects"). When the scope closes, the store sends nothing more and leaves
 * none of its commands in the client (see docs/redis.md, "Timeouts and closing"). A
 * prefix holding a brace fails with `InvalidOption` before anything is sent.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeRedis = Effect.fnUntraced(function* (options?: RedisOptions) {
  const redis = yield* Redis.Redis
  const prefix = options?.prefix ?? "lease:"
  const problem = prefixProblem(prefix)
  if (problem !== undefined) {
    return yield* Effect.fail(LeaseError.make(new LeaseError.InvalidOption({ option: "prefix", problem })))
  }
  const timeout = Duration.fromInputUnsafe(options?.commandTimeout ?? Duration.seconds(2))
  const channel = releaseChannel(prefix)
  const batchRenewals = options?.batchRenewals ?? true
  const commands = yield* RedisCommands.make(redis, timeout)
  const client = RedisConnections.isNodeClient(commands.client) ? commands.client : undefined
  const script = RedisCommands.luaScript
  const [acquire, renew, renewBatch, release, isHeld, inspect] = yield* Effect.all([
    script(acquireLua),
    script(renewLua),
    script(renewManyLua),
    script(releaseLua),
    script(isHeldLua),
    script(inspectLua)
  ])

  const renewReply = (reply: unknown): RenewReply | undefined =>
    reply === 1 ? "renewed" : reply === 0 ? "expired" : reply === -1 ? "stolen" : undefined
  const text = (u: unknown): string | undefined => (typeof u === "string" && u !== "" ? u : undefined)
  const bigintOf = (u: unknown): bigint | undefined =>
    typeof u === "string" && /^\d+$/.test(u) ? BigInt(u) : typeof u === "number" ? BigInt(u) : undefined
  const numberOf = (u: unknown): number | undefined =>
    typeof u === "number" ? u : typeof u === "string" && u !== "" && Number.isFinite(Number(u)) ? Number(u) : undefined
  const booleanOf = (reply: unknown) => (reply === 1 ? true : reply === 0 ? false : undefined)

  // Load the scripts now (one round trip, bounded, failures ignored): their first use is then one round trip
  // (EVALSHA), not two (EVALSHA, NOSCRIPT, EVAL), which matters to the first renew of a lease on a slow link.
  yield* Effect.ignore(
    Effect.forEach(
      [acquire, renew, renewBatch, release, isHeld, inspect],
      (loaded) => commands.send("start", "SCRIPT LOAD", ["SCRIPT", "LOAD", loaded.lua], (sha) => sha),
      { concurrency: "unbounded", discard: true }
    )
  )

  const renewOne = (lease: RenewRequest) =>
    commands.evalScript(
      "renew",
      lease.key,
      renew,
      [redisKeys(prefix, lease.key).lease],
      [lease.token, String(lease.ttlMillis)],
      renewReply
    )

  const renewChunk = (chunk: ReadonlyArray<RenewRequest>) =>
    commands.evalScript(
      "renew",
      chunk[0]!.key,
      renewBatch,
      chunk.map((lease) => redisKeys(prefix, lease.key).lease),
      chunk.flatMap((lease) => [lease.token, String(lease.ttlMillis)]),
      (reply): ReadonlyArray<RenewReply> | undefined => {
        if (!Array.isArray(reply) || reply.length !== chunk.length) return undefined
        const replies = reply.map(renewReply)
        return replies.every((r) => r !== undefined) ? (replies as Array<RenewReply>) : undefined
      }
    )

  return LeaseStore.of({
    id: storeId(`redis:${prefix}`),
    // NOSCRIPT and the EVAL after it share one bound.
    maxOperationMillis: Duration.toMillis(timeout),
    acquire: (key, token, ttlMillis, owner) => {
      const keys = redisKeys(prefix, key)
      return commands.evalScript(
        "acquire",
        key,
        acquire,
        [keys.lease, keys.fence],
        [token, String(ttlMillis), owner ?? ""],
        (reply): AcquireReply | undefined => {
          if (!Array.isArray(reply)) return undefined
          const [created, a, b] = reply as Reply
          if (created === 1) {
            const fence = bigintOf(a)
            const acquiredAt = numberOf(b)
            return fence === undefined || acquiredAt === undefined ? undefined : { _tag: "Acquired", fence, acquiredAt }
          }
          const remaining = numberOf(a)
          return created === 0 && remaining !== undefined
            ? { _tag: "Held", remainingMillis: remainingOf(remaining), owner: text(b) }
            : undefined
        }
      )
    },
    renew: (key, token, ttlMillis) => renewOne({ key, token, ttlMillis }),
    renewMany: (leases) => {
      if (leases.length === 0) return Effect.succeed([])
      if (!batchRenewals) return Effect.forEach(leases, renewOne, { concurrency: "unbounded" })
      const chunks: Array<ReadonlyArray<RenewRequest>> = []
      for (let i = 0; i < leases.length; i += renewBatchSize) chunks.push(leases.slice(i, i + renewBatchSize))
      return Effect.map(Effect.forEach(chunks, renewChunk, { concurrency: "unbounded" }), (replies) => replies.flat())
    },
    release: (key, token) =>
      commands.evalScript("release", key, release, [redisKeys(prefix, key).lease], [token, channel, key], booleanOf),
    isHeld: (key, token) =>
      commands.evalScript("checkOwnership", key, isHeld, [redisKeys(prefix, key).lease], [token], booleanOf),
    inspect: (key) =>
      commands.evalScript(
        "inspect",
        key,
        inspect,
        [redisKeys(prefix, key).lease],
        [],
        (reply): Option.Option<Snapshot> | undefined => {
          if (reply === null) return Option.none()
          if (!Array.isArray(reply)) return undefined
          const [pttl, owner, fenceText, acquiredAtText] = reply as Reply
          const remainingMillis = numberOf(pttl)
          const fence = bigintOf(fenceText)
          const acquiredAt = numberOf(acquiredAtText)
          return remainingMillis === undefined || fence === undefined || acquiredAt === undefined
            ? undefined
            : Option.some({ remainingMillis: remainingOf(remainingMillis), owner: text(owner), fence, acquiredAt })
        }
      ),
    watchReleases: Effect.gen(function* () {
      const events = yield* Effect.acquireRelease(Queue.unbounded<ReleaseEvent, Cause.Done>(), Queue.shutdown)
      const heard = (message: string) => {
        const released = parseRelease(message)
        if (released !== undefined) Queue.offerUnsafe(events, { _tag: "Released", ...released })
      }
      if (client !== undefined) {
        yield* RedisConnections.subscribe(client, channel, heard, (event) => {
          if (event === "ended") Queue.endUnsafe(events)
          else Queue.offerUnsafe(events, { _tag: event === "interrupted" ? "Interrupted" : "Resumed" })
        }).pipe(Effect.mapError((cause) => commandErrors(timeout).unavailable("watch releases", channel, cause)))
        return events
      }
      // The generic service reconnects its subscriber without telling: a lost announcement is found by the waiters'
      // bounded safety-net wake-ups instead.
      const messages = yield* redis.subscribe(channel)
      yield* Queue.take(messages).pipe(
        Effect.flatMap((message) => Effect.sync(() => heard(message.message))),
        Effect.forever,
        Effect.catchCause((cause) =>
          Effect.logWarning("leasehold: release notifications stopped; waiters poll", cause).pipe(
            Effect.andThen(Queue.end(events))
          )
        ),
        Effect.forkScoped
      )
      return events
    })
  })
})

/**
 * A Redis store (see `makeRedis`); needs `Redis.Redis`, for example from `NodeRedis.layer` of
 * `@effect/platform-node`. Fails with `InvalidOption` for a prefix holding a brace.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerRedis = (options?: RedisOptions): Layer.Layer<LeaseStore, LeaseError.LeaseError, Redis.Redis> =>
  Layer.effect(LeaseStore, makeRedis(options))

// ---------------------------------------------------------------------------------------------------------------
// Lua: user data reaches the scripts only through KEYS and ARGV.
// ---------------------------------------------------------------------------------------------------------------

const acquireLua = `
if redis.call("EXISTS", KEYS[1]) == 1 then
  return {0, redis.call("PTTL", KEYS[1]), redis.call("HGET", KEYS[1], "owner") or ""}
end
redis.call("INCR", KEYS[2])
local fence = redis.call("GET", KEYS[2])
local now = redis.call("TIME")
local acquiredAt = now[1] .. string.format("%03d", math.floor(tonumber(now[2]) / 1000))
redis.call("HSET", KEYS[1], "token", ARGV[1], "owner", ARGV[3], "fence", fence, "acquiredAt", acquiredAt)
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return {1, fence, acquiredAt}
`

const renewLua = `
local token = redis.call("HGET", KEYS[1], "token")
if token == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
if token then return -1 end
return 0
`

const renewBatchSize = 512

const renewManyLua = `
local replies = {}
for i = 1, #KEYS do
  local token = redis.call("HGET", KEYS[i], "token")
  if token == ARGV[2 * i - 1] then
    redis.call("PEXPIRE", KEYS[i], ARGV[2 * i])
    replies[i] = 1
  elseif token then
    replies[i] = -1
  else
    replies[i] = 0
  end
end
return replies
`

const releaseLua = `
local fields = redis.call("HMGET", KEYS[1], "token", "fence")
if fields[1] == ARGV[1] then
  redis.call("DEL", KEYS[1])
  redis.call("PUBLISH", ARGV[2], fields[2] .. ":" .. ARGV[3])
  return 1
end
return 0
`

const isHeldLua = `
if redis.call("HGET", KEYS[1], "token") == ARGV[1] then return 1 end
return 0
`

const inspectLua = `
local fields = redis.call("HMGET", KEYS[1], "owner", "fence", "acquiredAt")
if not fields[2] then return false end
return {redis.call("PTTL", KEYS[1]), fields[1], fields[2], fields[3]}
`

/**
 * The Lua source of each Redis operation, for reading what runs in Redis (and for tools that measure it). User
 * data reaches the scripts only through `KEYS` and `ARGV`:
 * - `acquire`: KEYS lease, fence; ARGV token, TTL (ms), owner. `{1, fence, acquiredAt}` or `{0, pttl, owner}`.
 * - `renew`: KEYS lease; ARGV token, TTL. `1` renewed, `0` expired, `-1` another token holds it.
 * - `renewMany`: KEYS the leases; ARGV token and TTL of each. The replies of `renew`, in order.
 * - `release`: KEYS lease; ARGV token, release channel, key. `1` released (and announced `<fence>:<key>`), `0` not.
 * - `isHeld`: KEYS lease; ARGV token. `1` or `0`.
 * - `inspect`: KEYS lease. `{pttl, owner, fence, acquiredAt}`, or nil when nobody holds it.
 *
 * @category redis
 * @since 0.1.0
 */
export const redisScripts = {
  acquire: acquireLua,
  renew: renewLua,
  renewMany: renewManyLua,
  release: releaseLua,
  isHeld: isHeldLua,
  inspect: inspectLua
} as const
