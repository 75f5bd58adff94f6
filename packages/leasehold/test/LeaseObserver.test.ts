import { assert, describe, it } from "@effect/vitest"
import { SequenceTokens } from "@leasehold/testing"
import { Effect, Fiber, Layer, Logger, References } from "effect"
import { TestClock } from "effect/testing"
import { Lease, LeaseObserver, LeaseStore } from "leasehold"

interface Entry {
  readonly level: string
  readonly text: string
  readonly annotations: Record<string, unknown>
}

describe("LeaseObserver.layerLog", () => {
  it.effect("logs acquire, renew and release with the key and fence, and never the token", () => {
    const entries: Array<Entry> = []
    const capture = Logger.make<unknown, void>((options) => {
      entries.push({
        level: options.logLevel,
        text: [options.message].flat().map(String).join(" "),
        annotations: { ...options.fiber.getRef(References.CurrentLogAnnotations) }
      })
    })
    const layer = Layer.fresh(Lease.layer).pipe(
      Layer.provide([LeaseStore.layerMemory, LeaseObserver.layerLog, SequenceTokens.layer("secret-token-")]),
      Layer.provideMerge(Logger.layer([capture]))
    )
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.withLease("logged", 300, Effect.sleep(150)))
      yield* TestClock.adjust(150)
      yield* Fiber.join(fiber)
      const texts = entries.map((entry) => entry.text)
      assert.deepStrictEqual(texts, ["lease acquired (ttl 300ms)", "lease renewed", "lease released"])
      for (const entry of entries) {
        assert.strictEqual(entry.level, "Debug")
        assert.deepStrictEqual(entry.annotations, { leaseKey: "logged", fence: "1" })
      }
      assert.notInclude(JSON.stringify(entries), "secret-token-")
    }).pipe(Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Debug"))
  })
})
