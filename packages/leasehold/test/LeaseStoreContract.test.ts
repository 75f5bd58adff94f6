import { RedisTestServer } from "@leasehold/testing"
import * as LeaseStoreContract from "@leasehold/testing/LeaseStoreContract"
import { Effect, Layer, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { LeaseStore } from "leasehold"

LeaseStoreContract.run("memory (TestClock)", LeaseStore.layerMemory, { elapse: TestClock.adjust })

LeaseStoreContract.run("redis", LeaseStore.layerRedis().pipe(Layer.provide(RedisTestServer.layer)), {
  elapse: Effect.sleep,
  excludeTestServices: true,
  awaitAnnouncements: (heard) =>
    Effect.sync(heard).pipe(
      Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("2 millis") }),
      Effect.timeout("5 seconds"),
      Effect.orDie,
      Effect.asVoid
    )
})
