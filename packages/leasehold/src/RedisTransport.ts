/**
 * The one seam between leasehold's Redis store and a Redis client: what the store needs of a client, and nothing
 * else (in the spirit of bsm/redislock's one-method `RedisClient`). A transport sends a command to the node that
 * serves a key, says whether a command sent now is written at once, subscribes to release announcements, and says
 * which topology it talks to, so that the store batches by it (one script per cluster slot) instead of guessing.
 *
 * The store takes a transport from the context when there is one (`RedisTransport` is leasehold's own service), and
 * otherwise sends through Effect's generic `Redis.Redis` service. Transports come from the client packages:
 * - `@leasehold/node-redis`: `NodeRedisClient.layer` (one server), `NodeRedisCluster.layer`, `NodeRedisSentinel.layer`;
 * - `@leasehold/ioredis`: `IoRedis.layer` (one server, or Sentinel), `IoRedis.layerCluster`.
 * Each of them provides `Redis.Redis` too, so Effect's own Redis modules run on the same client.
 *
 * ```ts
 * import { Layer } from "effect"
 * import { NodeRedisCluster } from "@leasehold/node-redis"
 * import { Lease, LeaseStore } from "leasehold"
 *
 * const LeaseLive = Lease.layer.pipe(
 *   Layer.provide(LeaseStore.layerRedis()),
 *   Layer.provide(NodeRedisCluster.layer({ rootNodes: [{ url: "redis://127.0.0.1:7000" }] }))
 * )
 * ```
 *
 * @since 0.2.0
 */
import { Context, type Effect, type Scope } from "effect"
import type * as Redis from "effect/persistence/Redis"
import { nodeRedisClientTransport } from "./internal/redis/nodeRedisClient.ts"
import * as slots from "./internal/redis/slots.ts"
import type { LeaseError } from "./LeaseError.ts"

/**
 * What a transport talks to:
 * - `standalone`: one primary (directly, or the current primary of a Sentinel group): any keys may share a script,
 *   and releases are announced with `PUBLISH` on one channel per prefix;
 * - `cluster`: a Redis Cluster: a script's keys share one slot (the store batches per slot), and releases are
 *   announced with `SPUBLISH` on a channel inside each lease's hash tag, heard with `SSUBSCRIBE` on the shard that
 *   serves it.
 *
 * @category models
 * @since 0.2.0
 */
export type Topology = "standalone" | "cluster"

/**
 * What a subscription reports besides its messages: its connection dropped (`interrupted`: announcements may be
 * missed from now on), it is subscribed again (`resumed`: any announcement in between was missed), or it stopped for
 * good (`ended`).
 *
 * @category models
 * @since 0.2.0
 */
export type SubscriptionEvent = "interrupted" | "resumed" | "ended"

/**
 * The options of one command.
 * - `signal`: fired by the store when the command's bound is over. Given only while `isReady()` is `false` (the
 *   client is reconnecting and may hold the command in a queue): a transport that queues commands must then drop the
 *   command from its queue when the signal fires, so that it never reaches Redis after its caller gave up.
 *
 * @category models
 * @since 0.2.0
 */
export interface SendOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * A Redis client as the store sees it. Every method is called by the store only; all of them must be cheap (the
 * store calls `send` and `isReady` once per lease operation).
 *
 * - `name`: the client and topology, for messages (`"node-redis"`, `"ioredis cluster"`).
 * - `topology`: see `Topology`.
 * - `send(key, args, options)`: sends `args` (a whole command) to the node that serves the Redis key `key` (any node
 *   when `key` is `undefined`: `SCRIPT LOAD`, `INFO`); resolves with the reply as the client decodes it (numbers,
 *   strings, arrays, `null`), rejects with the client's error (a Redis error reply, a closed connection). It follows
 *   cluster redirects (`MOVED`, `ASK`) as the client does, sets no timer of its own (the store bounds every
 *   command), and never retries a command that may have reached Redis.
 * - `isReady()`: whether a command sent now is written to its connection at once (not queued while reconnecting).
 * - `subscribe(channel, onMessage, onEvent)`: listens on `channel` for the life of the scope (`SSUBSCRIBE` on the
 *   shard that serves the channel on a cluster, `SUBSCRIBE` otherwise), on a connection other than the commands'
 *   own; succeeds once subscribed. It reports drops and returns through `onEvent` and never fails after it has
 *   succeeded; messages arrive through `onMessage`.
 * - `destroy()`: ends the client's connections at once, failing what they still wait for. Called when the store
 *   closes with commands of its own unanswered past their bound: closing the client gracefully would wait on a
 *   silent Redis.
 * - `redis`: Effect's `Redis.Redis` service over the same client. The store uses a transport only together with
 *   that very service, so a transport left in the context by another client is never used for this one.
 *
 * @category models
 * @since 0.2.0
 */
export interface RedisTransport {
  readonly name: string
  readonly topology: Topology
  readonly send: (key: string | undefined, args: ReadonlyArray<string>, options?: SendOptions) => Promise<unknown>
  readonly isReady: () => boolean
  readonly subscribe: (
    channel: string,
    onMessage: (message: string) => void,
    onEvent: (event: SubscriptionEvent) => void
  ) => Effect.Effect<void, unknown, Scope.Scope>
  readonly destroy: () => void
  readonly redis: Redis.Redis["Service"]
}

/**
 * The transport service. The Redis store (`LeaseStore.layerRedis`) uses it when the context has it; the client
 * packages' layers provide it beside `Redis.Redis`.
 *
 * @category services
 * @since 0.2.0
 */
export const RedisTransport: Context.Service<RedisTransport, RedisTransport> =
  Context.Service<RedisTransport>("leasehold/RedisTransport")

/**
 * A transport over a connected node-redis (5.x or 6.x) `createClient` client, for the life of the scope: commands go
 * over the client (and over a standby connection of leasehold's own while the client reconnects), releases are
 * heard on a subscriber connection of its own that reports its drops. It is paired with the `Redis.Redis` in the
 * context, which must be the service over the same client (as `NodeRedis.layer` provides both). The client is seen
 * structurally: leasehold does not depend on `redis`. `@leasehold/node-redis`'s `NodeRedisClient.layer` is built on
 * it.
 *
 * ```ts
 * const transport = yield* RedisTransport.fromNodeRedisClient(client)
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const fromNodeRedisClient: (
  client: unknown,
  options?: { readonly connectTimeoutMillis?: number | undefined }
) => Effect.Effect<RedisTransport, LeaseError, Scope.Scope | Redis.Redis> = nodeRedisClientTransport

/**
 * The Redis Cluster slot of a Redis key (CRC16/XMODEM of its hash tag, modulo 16384), as `CLUSTER KEYSLOT` answers
 * it: the store groups a batch of renewals by it.
 *
 * ```ts
 * RedisTransport.keySlot("lease:{jobs:nightly}") // the slot of every Redis key of the lease "jobs:nightly"
 * ```
 *
 * @category cluster
 * @since 0.2.0
 */
export const keySlot: (redisKey: string) => number = slots.keySlot
