/**
 * The transport over a node-redis `createClient` client (see `RedisTransport.fromNodeRedisClient`): commands over
 * the client, or over a standby connection while it reconnects; releases heard on a subscriber of leasehold's own.
 */
import { Effect, type Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import * as LeaseError from "../../LeaseError.ts"
import type { RedisTransport } from "../../RedisTransport.ts"
import { isNodeClient, subscribe, withStandby } from "./nodeRedisConnections.ts"

/**
 * The options of a command sent while the client is ready: without the client's own timer. node-redis's default
 * per-command timer is an `AbortSignal.timeout` that lives 5 s after every command, costly at tens of thousands of
 * commands a second, and it only ever ends a command not yet written: the store bounds its commands itself.
 */
const withoutClientTimer = { timeout: 0 } as const

export const nodeRedisClientTransport = (
  client: unknown,
  options?: { readonly connectTimeoutMillis?: number | undefined }
): Effect.Effect<RedisTransport, LeaseError.LeaseError, Scope.Scope | Redis.Redis> =>
  Effect.gen(function* () {
    const redis = yield* Redis.Redis
    if (!isNodeClient(client)) {
      return yield* Effect.fail(
        LeaseError.make(
          new LeaseError.InvalidOption({
            option: "client",
            problem:
              "it is not a node-redis client (createClient from the redis package, 5.x or 6.x); for a cluster use NodeRedisCluster.layer"
          })
        )
      )
    }
    // While the client reconnects, commands go over a standby connection of the transport's own (see
    // `withStandby`); it is closed with the scope, after the store that sends over it.
    const standby = withStandby(client, options?.connectTimeoutMillis ?? 2_000)
    yield* Effect.addFinalizer(() => Effect.sync(standby.close))
    const transport: RedisTransport = {
      name: "node-redis",
      topology: "standalone",
      send: (_key, args, sendOptions) =>
        standby.sendCommand(
          args as Array<string>,
          sendOptions?.signal === undefined ? withoutClientTimer : { timeout: 0, abortSignal: sendOptions.signal }
        ),
      isReady: () => client.isReady,
      subscribe: (channel, onMessage, onEvent) => subscribe(client, channel, onMessage, onEvent),
      destroy: () => client.destroy(),
      redis
    }
    return transport
  })
