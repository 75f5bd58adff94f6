/**
 * Model-based test of the Redis store, on real time: the same random sequences as the memory test (three clients,
 * each on its own connection with its own handles), with time jumps as real sleeps, must agree with the reference
 * model. Replay: see ops.ts (the seed replays the operations; the timings of a real-time run vary).
 *
 * Why real time, not simulated jumps: a jump could be mapped onto PEXPIRE of every lease key (PTTL minus the jump),
 * but then Redis would never expire anything by its own clock, and its own expiry is what the model must be held
 * against. So the jumps are real: TTLs of 100 to 400 ms, jumps of 0 to 250 ms, few runs.
 *
 * Near an expiry an answer is ambiguous on real time: the store executed the command at some instant between our
 * sending it and reading the reply, and the lease expired at some instant within the acquire's (or last renew's)
 * own window. The runner timestamps each operation with `Date.now()` before and after it (the clock Redis expires
 * by: both read the system time in whole milliseconds), and the model (LeaseModel.worlds) treats any operation
 * within `margin` of such an expiry window as ambiguous: it splits into the world where the lease is still live and
 * the world where it has expired, and keeps the world the store's answer agrees with (resynchronising from the
 * store). Everything else (fences, owners, token checks, remaining times within their windows) is compared in
 * every world, so only the live/expired question near an expiry is tolerated. The margin covers the truncation to
 * whole milliseconds on both sides and Redis's "expired when now > expiry" rule.
 */
import { assert, layer } from "@effect/vitest"
import { RedisTestServer, SequenceTokens } from "@leasehold/testing"
import { Effect, Layer } from "effect"
import fc from "fast-check"
import { Lease, LeaseStore, TokenSource } from "leasehold"
import { clientCount, makeStats, type Op, ops, parameters, replaying, run, type Stats } from "./ops.ts"

/**
 * Milliseconds around an expiry within which live-or-expired is left to the store (see above). It must be at least
 * 1: Redis keeps a key through the millisecond of its expiry (expired when now > expiry), and with a margin of 0 this
 * test fails within a few dozen runs on exactly that; 5 leaves room for the truncations on either side.
 */
const margin = 5
let runs = 0

layer(RedisTestServer.layer, { excludeTestServices: true })("model-based: Redis store (real time)", (it) => {
  it.effect(
    "agrees with the reference model on every answer, up to the instant of expiry",
    () =>
      Effect.gen(function* () {
        const { url } = yield* RedisTestServer.RedisTestServer
        const connections = yield* Effect.forEach(
          Array.from({ length: clientCount }, (_, i) => i),
          () => Layer.build(RedisTestServer.layerClient({ url, disableOfflineQueue: true }))
        )
        /** One sequence on keys of its own (a fresh prefix), one Lease service per client and connection. */
        const runOnRedis = (sequence: ReadonlyArray<Op>, stats: Stats) =>
          Effect.scoped(
            Effect.gen(function* () {
              const prefix = `model:${process.pid}:${++runs}:`
              const clients = yield* Effect.forEach(connections, (connection, i) =>
                LeaseStore.makeRedis({ prefix }).pipe(
                  Effect.flatMap((store) => Lease.make.pipe(Effect.provideService(LeaseStore.LeaseStore, store))),
                  Effect.provideService(TokenSource.TokenSource, SequenceTokens.make(`client${i}-run${runs}-`)),
                  Effect.provide(connection)
                )
              )
              yield* run(
                {
                  clients,
                  keyName: (key) => `key-${key}`,
                  now: Effect.sync(() => Date.now()),
                  advance: (millis) => Effect.sleep(millis),
                  margin,
                  tolerance: 1
                },
                sequence,
                stats
              )
            })
          )
        const stats = makeStats()
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(ops(30), (sequence) => Effect.runPromise(runOnRedis(sequence, stats))),
            // No shrinking: on real time each shrink step replays a sequence with sleeps, and its timing differs.
            { ...parameters(20), endOnFailure: true }
          )
        )
        if (replaying) return
        assert.isTrue(stats.operations >= 50, `${stats.operations} operations reached Redis`)
        assert.isTrue(
          stats.ambiguous <= stats.operations / 4,
          `${stats.ambiguous} of ${stats.operations} answers were ambiguous: too few were checked strictly`
        )
        for (const outcome of ["acquire:Acquired", "acquire:Held", "renew:true", "release:true", "inspect:some"]) {
          assert.isTrue((stats.outcomes[outcome] ?? 0) >= 1, `${outcome} never happened`)
        }
      }),
    30_000
  )
})
