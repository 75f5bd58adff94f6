import { RedisTestServer } from "@leasehold/testing"
import * as LeaseStoreContract from "@leasehold/testing/LeaseStoreContract"
import { Effect, Layer } from "effect"
import * as Redis from "effect/persistence/Redis"
import { TestClock } from "effect/testing"
import { LeaseStore } from "leasehold"

LeaseStoreContract.run("memory (TestClock)", LeaseStore.layerMemory, { elapse: TestClock.adjust })

const redisOptions = { elapse: Effect.sleep, excludeTestServices: true }

// NodeRedis.layer provides both the Redis service and its node-redis client: the store sends on the client.
LeaseStoreContract.run("redis", LeaseStore.layerRedis().pipe(Layer.provide(RedisTestServer.layer)), redisOptions)

// Only the generic Redis service: the store sends through it.
LeaseStoreContract.run(
  "redis (generic Redis service)",
  LeaseStore.layerRedis().pipe(
    Layer.provide(Layer.effect(Redis.Redis, Effect.service(Redis.Redis)).pipe(Layer.provide(RedisTestServer.layer)))
  ),
  redisOptions
)
