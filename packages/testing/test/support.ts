import { NodeRedis } from "@effect/platform-node"
import { Context, Effect, Layer, References } from "effect"
import * as Redis from "effect/persistence/Redis"

/**
 * A client that never offline-queues and is destroyed (not drained) when the scope closes. Its warnings about the
 * connection lost on purpose are not logged.
 */
export const connect = (url: string) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(NodeRedis.layer({ url, disableOfflineQueue: true })).pipe(
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
    const { client } = Context.get(context, NodeRedis.NodeRedis)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
    return Context.get(context, Redis.Redis)
  })
