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
import { type Cause, Context, Deferred, Duration, Effect, Exit, Layer, Option, Queue, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { commandErrors } from "./internal/redis/boundedCommand.ts"
import * as RedisCommands from "./internal/redis/commands.ts"
import { keySlot } from "./internal/redis/slots.ts"
import * as LeaseError from "./LeaseError.ts"
import type { LeaseKey } from "./LeaseKey.ts"
import type { LeaseToken } from "./LeaseToken.ts"
import { RedisTransport, type SubscriptionEvent, type Topology } from "./RedisTransport.ts"

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
  /**
   * For a store whose announcements are per key (the Redis store on a Cluster: one sharded channel per lease, heard
   * on the shard that serves it): listens for the releases of `key` for the life of the scope, delivered to the
   * queues of `watchReleases`; succeeds once subscribed. Waiters call it before each try, so a release between a try
   * and the sleep after it is heard. Stores that announce every release on one channel leave it out.
   */
  readonly watchKey?: ((key: LeaseKey) => Effect.Effect<void, LeaseError.LeaseError, Scope.Scope>) | undefined
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
 *
 * @category models
 * @since 0.1.0
 */
export interface RedisOptions {
  readonly prefix?: string | undefined
  readonly commandTimeout?: Duration.Input | undefined
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

/**
 * The sharded pub/sub channel on which the Redis store announces the releases of one key on a Redis Cluster
 * (`SPUBLISH` from the release script): inside the lease's hash tag, so it lives in the lease's slot and is heard on
 * the shard that serves the lease. Messages are as on `releaseChannel`.
 *
 * @category redis
 * @since 0.2.0
 */
export const shardedReleaseChannel = (prefix: string, key: string): string => `${prefix}${hashTag(key)}:released`

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
 * Makes a Redis store (see `RedisOptions`). Each operation is one `EVALSHA`. The store sends over the
 * `RedisTransport` in the context when there is one paired with the `Redis.Redis` in the context (the layers of
 * `@leasehold/node-redis` and `@leasehold/ioredis` provide both), and otherwise through the generic `Redis.Redis`
 * service. The transport says which topology it talks
 * to; over the generic service the store asks the server (`INFO cluster`). On a Redis Cluster, leases due together
 * are renewed one script per slot, and releases are announced on sharded channels (see `shardedReleaseChannel`).
 * When the scope closes, the store sends nothing more and leaves none of its commands in the client (see
 * docs/redis.md, "Timeouts and closing"). A prefix holding a brace fails with `InvalidOption` before anything is
 * sent.
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
  // Only a transport over this very Redis service's client (see `RedisTransport.redis`).
  const transport = Option.getOrUndefined(
    Option.filter(yield* Effect.serviceOption(RedisTransport), (paired) => paired.redis === redis)
  )
  const commands = yield* RedisCommands.make(redis, transport, timeout)
  const topology: Topology = commands.topology ?? (yield* askTopology(commands))
  // Sharded announcements need a transport that can `SSUBSCRIBE` on the right shard; over the generic service a
  // cluster hears the classic, cluster-wide `PUBLISH`.
  const sharded = transport?.topology === "cluster"
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
  // (EVALSHA), not two (EVALSHA, NOSCRIPT, EVAL), which matters to the first renew of a lease on a slow link. On a
  // cluster this reaches one node; the others load each script at its first use there.
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
    chunk.length === 1
      ? Effect.map(renewOne(chunk[0]!), (reply) => [reply])
      : commands.evalScript(
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

  /**
   * The leases of a batch in scripts: up to `renewBatchSize` a script; on a cluster, one slot a script (a script's
   * keys must share a slot). Each request is answered at its own index.
   */
  const renewBatches = (leases: ReadonlyArray<RenewRequest>) => {
    const groups: Array<Array<number>> = []
    if (topology === "cluster") {
      const bySlot = new Map<number, Array<number>>()
      leases.forEach((lease, index) => {
        const slot = keySlot(hashTag(lease.key))
        const group = bySlot.get(slot)
        if (group === undefined) bySlot.set(slot, [index])
        else group.push(index)
      })
      for (const group of bySlot.values()) {
        for (let i = 0; i < group.length; i += renewBatchSize) groups.push(group.slice(i, i + renewBatchSize))
      }
    } else {
      for (let i = 0; i < leases.length; i += renewBatchSize) {
        groups.push(Array.from({ length: Math.min(renewBatchSize, leases.length - i) }, (_, j) => i + j))
      }
    }
    return Effect.map(
      Effect.forEach(groups, (group) => renewChunk(group.map((index) => leases[index]!)), {
        concurrency: "unbounded"
      }),
      (replies) => {
        const ordered = new Array<RenewReply>(leases.length)
        groups.forEach((group, g) => {
          group.forEach((index, i) => {
            ordered[index] = replies[g]![i]!
          })
        })
        return ordered
      }
    )
  }

  const watchers = new Set<Queue.Queue<ReleaseEvent, Cause.Done>>()
  const heard = (message: string) => {
    for (const watcher of watchers) heardBy(watcher, message)
  }
  const told = (event: SubscriptionEvent) => {
    for (const watcher of watchers) toldTo(watcher, event)
  }
  const storeScope = yield* Effect.scope
  const watchKey = sharded
    ? perKeySubscriptions(storeScope, (key, ended) =>
        transport
          .subscribe(shardedReleaseChannel(prefix, key), heard, (event) => {
            // One key's subscription ending is a drop of that key's announcements, not the end of all of them; the
            // next waiter of the key subscribes again.
            if (event === "ended") ended()
            told(event === "ended" ? "interrupted" : event)
          })
          .pipe(Effect.mapError((cause) => commandErrors(timeout).unavailable("watch releases", key, cause)))
      )
    : undefined

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
    renewMany: (leases) => (leases.length === 0 ? Effect.succeed([]) : renewBatches(leases)),
    release: (key, token) =>
      commands.evalScript(
        "release",
        key,
        release,
        [redisKeys(prefix, key).lease],
        sharded ? [token, shardedReleaseChannel(prefix, key), key, "1"] : [token, channel, key, "0"],
        booleanOf
      ),
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
    watchKey,
    watchReleases: Effect.gen(function* () {
      const events = yield* Effect.acquireRelease(
        Effect.tap(Queue.unbounded<ReleaseEvent, Cause.Done>(), (queue) => Effect.sync(() => watchers.add(queue))),
        (queue) =>
          Effect.andThen(
            Effect.sync(() => watchers.delete(queue)),
            Queue.shutdown(queue)
          )
      )
      // On a cluster the subscriptions are per key (`watchKey`); this queue only collects what they hear.
      if (sharded) return events
      if (transport !== undefined) {
        yield* transport
          .subscribe(
            channel,
            (message) => heardBy(events, message),
            (event) => toldTo(events, event)
          )
          .pipe(Effect.mapError((cause) => commandErrors(timeout).unavailable("watch releases", channel, cause)))
        return events
      }
      // The generic service reconnects its subscriber without telling: a lost announcement is found by the waiters'
      // bounded safety-net wake-ups instead.
      const messages = yield* redis.subscribe(channel)
      yield* Queue.take(messages).pipe(
        Effect.flatMap((message) => Effect.sync(() => heardBy(events, message.message))),
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

/** Delivers an announcement to one watch's queue. */
const heardBy = (events: Queue.Queue<ReleaseEvent, Cause.Done>, message: string) => {
  const released = parseRelease(message)
  if (released !== undefined) Queue.offerUnsafe(events, { _tag: "Released", ...released })
}

/** Delivers a subscription's drop, return or end to one watch's queue. */
const toldTo = (events: Queue.Queue<ReleaseEvent, Cause.Done>, event: SubscriptionEvent) => {
  if (event === "ended") Queue.endUnsafe(events)
  else Queue.offerUnsafe(events, { _tag: event === "interrupted" ? "Interrupted" : "Resumed" })
}

/**
 * The topology of the server behind the generic `Redis` service: `cluster` when `INFO cluster` says
 * `cluster_enabled:1`, else (and when it cannot tell) `standalone`.
 */
const askTopology = (commands: RedisCommands.RedisCommands): Effect.Effect<Topology> =>
  commands
    .send("start", "INFO cluster", ["INFO", "cluster"], (info) => (typeof info === "string" ? info : undefined))
    .pipe(
      Effect.map((info): Topology => (/^cluster_enabled:1\s*$/m.test(info) ? "cluster" : "standalone")),
      Effect.orElseSucceed((): Topology => "standalone")
    )

/**
 * Subscriptions shared per key, for `watchKey`: the first watcher of a key subscribes (in a scope of the key's own,
 * forked into the store's scope, so that a watcher that gives up waiting for it does not cancel it for the others),
 * the last one to leave unsubscribes; a subscription that failed or ended is forgotten, so the next watcher subscribes
 * again. A watcher waits for the subscription interruptibly.
 */
const perKeySubscriptions = (
  storeScope: Scope.Scope,
  subscribe: (key: string, ended: () => void) => Effect.Effect<void, LeaseError.LeaseError, Scope.Scope>
) => {
  interface Entry {
    count: number
    readonly scope: Scope.Closeable
    readonly ready: Deferred.Deferred<void, LeaseError.LeaseError>
  }
  const entries = new Map<string, Entry>()
  const leave = (key: string, entry: Entry) =>
    Effect.suspend(() => {
      if (--entry.count > 0) return Effect.void
      if (entries.get(key) === entry) entries.delete(key)
      return Scope.close(entry.scope, Exit.void)
    })
  return (key: LeaseKey): Effect.Effect<void, LeaseError.LeaseError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        const existing = entries.get(key)
        if (existing !== undefined) {
          existing.count++
          return Effect.succeed(existing)
        }
        const entry: Entry = { count: 1, scope: Scope.makeUnsafe(), ready: Deferred.makeUnsafe() }
        entries.set(key, entry)
        const forget = () => {
          if (entries.get(key) === entry) entries.delete(key)
        }
        return subscribe(key, forget).pipe(
          Scope.provide(entry.scope),
          Effect.exit,
          Effect.flatMap((exit) => {
            // A failed subscription is not kept: the next watcher tries again.
            if (Exit.isFailure(exit)) forget()
            return Deferred.done(entry.ready, exit)
          }),
          Effect.forkIn(storeScope),
          Effect.as(entry)
        )
      }),
      (entry) => leave(key, entry)
    ).pipe(Effect.flatMap((entry) => Deferred.await(entry.ready)))
}

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
  if ARGV[4] == "1" then
    redis.call("SPUBLISH", ARGV[2], fields[2] .. ":" .. ARGV[3])
  else
    redis.call("PUBLISH", ARGV[2], fields[2] .. ":" .. ARGV[3])
  end
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
 * - `release`: KEYS lease; ARGV token, release channel, key, `"1"` to announce with `SPUBLISH` (a cluster) or `"0"`
 *   with `PUBLISH`. `1` released (and announced `<fence>:<key>`), `0` not.
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
