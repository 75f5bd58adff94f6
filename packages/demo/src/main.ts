/**
 * The leasehold demo: workers contending for leases, on the in-memory store by default, or on Redis
 * (`REDIS_URL=redis://… npm run demo`, or `npm run demo -- --redis` to start a private redis-server).
 *
 * 1. Hand-offs: four workers take turns on one key; fences rise with every holder, and a fenced ledger accepts
 *    each write.
 * 2. Auto-renew: one worker holds a 600 ms lease for 2 seconds; the lease is renewed every 200 ms.
 * 3. A stalled holder: a worker blocks its event loop past its TTL; a rival takes the key with a higher fence, and
 *    the stalled worker is stopped before its next write.
 */
import { NodeRedis } from "@effect/platform-node"
import { RedisTestServer } from "@leasehold/testing"
import { Duration, Effect, Exit, Layer, Option } from "effect"
import { Lease, LeaseError, LeaseObserver, LeaseStore } from "leasehold"

const startedAt = performance.now()
const say = (who: string, what: string) =>
  Effect.sync(() => {
    const at = ((performance.now() - startedAt) / 1000).toFixed(3)
    console.log(`  +${at}s  ${who.padEnd(10)} ${what}`)
  })
const heading = (title: string) => Effect.sync(() => console.log(`\n${title}`))

const failures: Array<string> = []
const check = (claim: string, holds: boolean) =>
  Effect.sync(() => {
    if (!holds) failures.push(claim)
    console.log(`  ${holds ? "✓" : "✗"} ${claim}`)
  })

/** A protected resource that remembers the highest fence it has seen and refuses writes from older holders. */
const makeLedger = () => {
  let highest = 0n
  const accepted: Array<bigint> = []
  return {
    accepted,
    write: (fence: bigint) =>
      Effect.sync(() => {
        if (fence < highest) return false
        highest = fence
        accepted.push(fence)
        return true
      })
  }
}

const renewals = new Map<string, number>()
const demoObserver: LeaseObserver.LeaseObserver = {
  ...LeaseObserver.noop,
  renewed: (lease) => Effect.sync(() => renewals.set(lease.key, (renewals.get(lease.key) ?? 0) + 1)),
  lost: (lease, reason) => say("observer", `lease on ${lease.key} (fence ${lease.fence}) lost: ${reason}`)
}

const handOffs = Effect.gen(function* () {
  yield* heading("1. Hand-offs: 4 workers x 3 turns on one key (TTL 1 s, 60 ms of work per turn)")
  const ledger = makeLedger()
  let inside = 0
  let mostInside = 0
  const worker = (name: string) =>
    Effect.repeat(
      Lease.withLease(
        "demo:ledger",
        "1 second",
        (lease) =>
          Effect.gen(function* () {
            inside++
            mostInside = Math.max(mostInside, inside)
            yield* say(name, `holds demo:ledger, fence ${lease.fence}`)
            yield* Effect.sleep("60 millis")
            yield* lease.ensureValid
            yield* ledger.write(lease.fence)
            inside--
          }),
        { wait: "10 seconds", owner: { id: name, pid: process.pid } }
      ),
      { times: 2 }
    )
  yield* Effect.all(["worker-1", "worker-2", "worker-3", "worker-4"].map(worker), { concurrency: "unbounded" })
  const rising = ledger.accepted.every((fence, i) => i === 0 || fence > ledger.accepted[i - 1]!)
  yield* check(`12 turns, at most one holder at a time (most at once: ${mostInside})`, mostInside === 1)
  yield* check(`fences rose with every holder: ${ledger.accepted.join(", ")}`, rising && ledger.accepted.length === 12)
})

const autoRenew = Effect.gen(function* () {
  yield* heading("2. Auto-renew: a 600 ms lease held for 2 seconds of work")
  const owned = yield* Lease.withLease("demo:long-job", "600 millis", (lease) =>
    Effect.gen(function* () {
      yield* say("worker-5", `holds demo:long-job, fence ${lease.fence}; working for 2 s`)
      yield* Effect.sleep("2 seconds")
      return yield* Lease.checkOwnership(yield* lease.current)
    })
  )
  const count = renewals.get("demo:long-job") ?? 0
  yield* say("worker-5", `done; renewed ${count} times`)
  yield* check("still the owner after 2 s, more than three times the TTL", owned)
  yield* check(`renewed every TTL/3 (200 ms): ${count} renewals in 2 s`, count >= 9 && count <= 10)
})

const stalledHolder = Effect.gen(function* () {
  yield* heading("3. A stalled holder: worker-6 blocks its event loop for 900 ms with a 500 ms lease")
  const ledger = makeLedger()
  const stalled = Lease.withLease("demo:stall", "500 millis", (lease) =>
    Effect.gen(function* () {
      yield* say("worker-6", `holds demo:stall, fence ${lease.fence}; stalls for 900 ms`)
      yield* ledger.write(lease.fence)
      const until = performance.now() + 900
      while (performance.now() < until) {
        // a synchronous stall, like a long GC pause: no timer, no renewal, no I/O runs meanwhile
      }
      yield* say("worker-6", "resumes and checks its lease before writing again")
      yield* lease.ensureValid
      yield* ledger.write(lease.fence)
      yield* say("worker-6", "wrote after the stall (this must not happen)")
    })
  )
  const rival = Effect.sleep("50 millis").pipe(
    Effect.andThen(
      Lease.withLease(
        "demo:stall",
        "500 millis",
        (lease) =>
          Effect.gen(function* () {
            yield* say("worker-7", `holds demo:stall, fence ${lease.fence}`)
            return yield* ledger.write(lease.fence)
          }),
        { wait: "5 seconds" }
      )
    )
  )
  const [stalledExit, rivalWrote] = yield* Effect.all([Effect.exit(stalled), rival], { concurrency: "unbounded" })
  const lost = Exit.findErrorOption(stalledExit).pipe(
    Option.filter(LeaseError.isLeaseError),
    Option.map((error) => error.reason),
    Option.filter((reason) => reason._tag === "LeaseLost")
  )
  yield* Option.match(lost, {
    onNone: () => say("worker-6", "finished without losing its lease"),
    onSome: (reason) => say("worker-6", `stopped with LeaseLost (${reason.because}): ${reason.message}`)
  })
  yield* check("the stalled holder was stopped with LeaseLost", Option.isSome(lost))
  yield* check("the rival took over and its write was accepted", rivalWrote)
  yield* check(
    `the ledger saw fences ${ledger.accepted.join(", ")}: no write from the stale holder after the rival`,
    ledger.accepted.length === 2 && ledger.accepted[1]! > ledger.accepted[0]!
  )
})

const storeLayer = (): { readonly name: string; readonly layer: Layer.Layer<LeaseStore.LeaseStore, unknown> } => {
  const prefix = "leasehold-demo:"
  const url = process.env.REDIS_URL
  if (url !== undefined && url !== "") {
    return {
      name: "Redis from REDIS_URL",
      layer: LeaseStore.layerRedis({ prefix }).pipe(Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true })))
    }
  }
  if (process.argv.includes("--redis")) {
    return {
      name: "a private redis-server on 127.0.0.1 (--redis)",
      layer: LeaseStore.layerRedis({ prefix }).pipe(Layer.provide(RedisTestServer.layer))
    }
  }
  return { name: "the in-memory store (set REDIS_URL or pass --redis for Redis)", layer: LeaseStore.layerMemory }
}

const store = storeLayer()
const LeaseLive = Lease.layer.pipe(Layer.provide(store.layer), Layer.provide(LeaseObserver.layer(demoObserver)))

const main = Effect.gen(function* () {
  yield* Effect.sync(() => console.log(`leasehold demo, on ${store.name}`))
  yield* handOffs
  yield* autoRenew
  yield* stalledHolder
  yield* Effect.sync(() => {
    const elapsed = Duration.format(Duration.millis(Math.round(performance.now() - startedAt)))
    console.log(failures.length === 0 ? `\nAll claims held (${elapsed}).` : `\n${failures.length} claim(s) failed.`)
    if (failures.length > 0) process.exitCode = 1
  })
})

Effect.runPromise(main.pipe(Effect.provide(LeaseLive))).catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
