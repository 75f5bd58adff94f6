/**
 * The soak: `processes` worker processes (`test/chaos/worker.ts`) of `workersPerProcess` fibers each contend for a few
 * keys for a bounded time, each process talking to the lease store (a private `redis-server`) through its own
 * `TcpProxy`, while faults are injected one at a time, drawn from a seeded PRNG (the same seed replays the same
 * faults; timings still vary with the machine). Protected steps go to a second, healthy `redis-server`: a fenced
 * resource per key that records every step and flags a step whose fence is lower than one it already saw (an older
 * holder acting after a newer one began: an overlap).
 *
 * Faults within the design's assumptions: latency up to TTL/6 each way, partitions (held bytes, up to 2 TTL),
 * replies dropped, connections cut, Redis paused (up to 1.5 TTL), a worker process paused briefly (up to TTL/5).
 * Outside them: a worker process paused beyond its TTL (1.5 to 2.5 TTL), as in a long GC pause or a suspended VM.
 * Redis restarts are left out: without persistence they reset the fences, which the docs already say fences cannot
 * survive.
 *
 * The verdict: no overlap at the resource except by a holder that was paused beyond its TTL, and every holder whose
 * work was running when such a pause began ended with `LeaseLost`.
 */
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Context, Duration, Effect } from "effect"
import * as Redis from "effect/persistence/Redis"
import * as FencedResource from "../test/chaos/FencedResource.ts"
import { between, type LeaseRecord, type Outcome, random, type WorkerConfig } from "../test/chaos/protocol.ts"
import * as Workers from "../test/chaos/Workers.ts"

/** What to run: how long, which seed, how many processes, workers and keys, which TTL. */
export interface Options {
  readonly durationMillis: number
  readonly seed: number
  readonly processes: number
  readonly workersPerProcess: number
  readonly keys: number
  readonly ttlMillis: number
  /** Progress lines (the seed, each fault); default: none. */
  readonly log?: ((line: string) => void) | undefined
}

/** The command's defaults: 60 s, 3 processes x 4 workers, 3 keys, TTL 1 s. */
export const defaults = {
  durationMillis: 60_000,
  processes: 3,
  workersPerProcess: 4,
  keys: 3,
  ttlMillis: 1_000
} as const

/** The faults the soak injects; only `process-pause-beyond-ttl` breaks the design's assumptions. */
export type FaultKind =
  | "latency"
  | "partition"
  | "drop-replies"
  | "cut"
  | "redis-pause"
  | "process-pause"
  | "process-pause-beyond-ttl"

/** One injected fault, as it happened. */
export interface Fault {
  readonly kind: FaultKind
  /** The process whose link or process it hit (`p0`, ...), or `redis`. */
  readonly target: string
  /** Wall clock. */
  readonly startedAt: number
  readonly endedAt: number
  readonly detail: string
}

/** A step the fenced resource saw with a fence lower than one it had seen: an older holder after a newer one. */
export interface Overlap {
  readonly key: string
  readonly step: FencedResource.Step
  /** Whether the stepping holder was paused beyond its TTL meanwhile: outside the design's assumptions. */
  readonly explained: boolean
}

/** Everything the soak saw, and its verdict (`ok`). */
export interface Report {
  readonly options: Options
  readonly faults: ReadonlyArray<Fault>
  readonly leases: ReadonlyArray<LeaseRecord>
  readonly attempts: Readonly<Record<string, number>>
  readonly steps: number
  readonly overlaps: ReadonlyArray<Overlap>
  /** Holders whose work was running when their process was paused beyond the TTL. */
  readonly pausedHolders: ReadonlyArray<LeaseRecord>
  /** Those of them that did not end with `LeaseLost`. */
  readonly pausedWithoutLoss: ReadonlyArray<LeaseRecord>
  /** Workers that reported themselves stuck, or did not exit in time. */
  readonly stuck: ReadonlyArray<string>
  readonly ok: boolean
}

const weights: ReadonlyArray<readonly [FaultKind, number]> = [
  ["latency", 2],
  ["partition", 2],
  ["drop-replies", 1],
  ["cut", 1],
  ["redis-pause", 2],
  ["process-pause", 1],
  ["process-pause-beyond-ttl", 1]
]

const pick = (next: () => number): FaultKind => {
  const total = weights.reduce((sum, [, weight]) => sum + weight, 0)
  let draw = next() * total
  for (const [kind, weight] of weights) {
    draw -= weight
    if (draw < 0) return kind
  }
  return weights[0]![0]
}

const count = <A>(items: ReadonlyArray<A>, keyOf: (item: A) => string): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const item of items) counts[keyOf(item)] = (counts[keyOf(item)] ?? 0) + 1
  return counts
}

/** Runs the soak (see the module comment); the processes, servers and proxies live as long as the scope. */
export const run = (options: Options) =>
  Effect.gen(function* () {
    const log = options.log ?? (() => {})
    const ttl = options.ttlMillis
    const store = yield* RedisFaults.make
    const resourceServer = yield* RedisTestServer.startServer()
    const resourceRedis = Context.get(yield* RedisTestServer.connectDisposable(resourceServer.url), Redis.Redis)
    const keys = Array.from({ length: options.keys }, (_, index) => `soak:${index}`)
    const ids = Array.from({ length: options.processes }, (_, index) => `p${index}`)
    const proxies = yield* Effect.forEach(ids, () => TcpProxy.make({ host: store.host, port: store.port }))
    const workers = yield* Effect.forEach(
      ids,
      (id, index) => {
        const config: WorkerConfig = {
          id,
          leaseUrl: proxies[index]!.url,
          resourceUrl: resourceServer.url,
          resource: "soak",
          checkLease: false,
          keys,
          workers: options.workersPerProcess,
          ttlMillis: ttl,
          holdMillis: [ttl / 10, 1.5 * ttl],
          stepEveryMillis: 25,
          waitMillis: 2 * ttl,
          commandTimeoutMillis: ttl,
          seed: options.seed
        }
        return Workers.spawn(config)
      },
      { concurrency: "unbounded" }
    )
    yield* Effect.forEach(workers, (worker) => worker.waitFor((line) => line.type === "ready"), {
      concurrency: "unbounded",
      discard: true
    }).pipe(Effect.timeout("60 seconds"))

    const until = Date.now() + options.durationMillis
    yield* Effect.forEach(workers, (worker) => worker.go({ untilEpochMillis: until }), { discard: true })
    log(
      `soak: seed ${options.seed}, ${Math.round(options.durationMillis / 1000)} s, ${options.processes} processes x ${options.workersPerProcess} workers, ${options.keys} keys, TTL ${ttl} ms`
    )

    const next = random(options.seed)
    const faults: Array<Fault> = []
    const hold = (millis: number) => Effect.sleep(Duration.millis(Math.round(millis)))
    const inject = Effect.gen(function* () {
      const kind = pick(next)
      const index = Math.floor(next() * options.processes)
      const proxy = proxies[index]!
      const worker = workers[index]!
      const target = kind === "redis-pause" ? "redis" : ids[index]!
      const startedAt = Date.now()
      let detail = ""
      switch (kind) {
        case "latency": {
          const toServer = Math.round(between(next, 0, ttl / 6))
          const toClient = Math.round(between(next, 0, ttl / 6))
          const millis = between(next, ttl / 2, 2 * ttl)
          detail = `${toServer}/${toClient} ms for ${Math.round(millis)} ms`
          yield* proxy.setLatency({ toServer, toClient })
          yield* hold(millis)
          yield* proxy.heal
          break
        }
        case "partition": {
          const millis = between(next, ttl / 4, 2 * ttl)
          detail = `${Math.round(millis)} ms`
          yield* proxy.blackhole
          yield* hold(millis)
          yield* proxy.heal
          break
        }
        case "drop-replies": {
          const millis = between(next, ttl / 4, ttl)
          detail = `${Math.round(millis)} ms`
          yield* proxy.dropReplies
          yield* hold(millis)
          yield* proxy.heal
          break
        }
        case "cut":
          yield* proxy.cut
          break
        case "redis-pause": {
          const millis = between(next, ttl / 10, 1.5 * ttl)
          detail = `${Math.round(millis)} ms`
          yield* Effect.scoped(Effect.andThen(store.pause, hold(millis)))
          break
        }
        case "process-pause":
        case "process-pause-beyond-ttl": {
          const millis =
            kind === "process-pause" ? between(next, ttl / 20, ttl / 5) : between(next, 1.5 * ttl, 2.5 * ttl)
          detail = `${Math.round(millis)} ms`
          yield* Effect.acquireUseRelease(
            worker.stop,
            () => hold(millis),
            () => worker.resume
          )
          break
        }
      }
      const fault: Fault = { kind, target, startedAt, endedAt: Date.now(), detail }
      faults.push(fault)
      log(`fault ${faults.length}: ${kind} ${target} ${detail}`.trimEnd())
    })
    while (Date.now() < until - ttl) {
      yield* hold(between(next, ttl / 4, ttl))
      yield* inject
    }

    const grace = 2 * ttl + 1.5 * ttl + 4 * ttl + 15_000
    const exits = yield* Effect.forEach(
      workers,
      (worker) =>
        worker.exited.pipe(
          Effect.timeoutOption(Duration.millis(until - Date.now() + grace)),
          Effect.map((code) => ({ id: worker.id, code }))
        ),
      { concurrency: "unbounded" }
    )

    const lines = workers.flatMap((worker) => [...worker.lines()])
    const leases = lines.filter((line): line is LeaseRecord => line.type === "lease")
    const attempts = count(
      lines.filter((line) => line.type === "attempt"),
      (line) => (line as { readonly outcome: Outcome }).outcome
    )
    const stuck = [
      ...exits.filter(({ code }) => code._tag === "None" || code.value !== 0).map(({ id }) => id),
      ...workers.filter((worker) => worker.lines().some((line) => line.type === "stuck")).map((worker) => worker.id)
    ]

    const longPauses = faults.filter((fault) => fault.kind === "process-pause-beyond-ttl")
    const pausedAcross = (lease: LeaseRecord) =>
      longPauses.some(
        (pause) =>
          pause.target === lease.holder.split("/")[0] &&
          lease.startedAt < pause.endedAt &&
          (lease.workEndedAt ?? lease.endedAt) > pause.startedAt
      )
    const pausedHolders = leases.filter((lease) =>
      longPauses.some(
        (pause) =>
          pause.target === lease.holder.split("/")[0] &&
          lease.startedAt < pause.startedAt &&
          (lease.workEndedAt ?? lease.endedAt) > pause.startedAt
      )
    )
    const pausedWithoutLoss = pausedHolders.filter((lease) => !lease.outcome.startsWith("lost:"))

    const overlaps: Array<Overlap> = []
    let steps = 0
    for (const key of keys) {
      const stepsOfKey = yield* FencedResource.make(resourceRedis, `soak:${key}`).log
      steps += stepsOfKey.length
      for (const step of stepsOfKey) {
        if (step.verdict !== "stale") continue
        const lease = leases.find(
          (lease) => lease.key === key && lease.holder === step.holder && lease.fence === String(step.fence)
        )
        overlaps.push({ key, step, explained: lease !== undefined && pausedAcross(lease) })
      }
    }

    const report: Report = {
      options,
      faults,
      leases,
      attempts,
      steps,
      overlaps,
      pausedHolders,
      pausedWithoutLoss,
      stuck,
      ok:
        leases.length > 0 &&
        overlaps.every((overlap) => overlap.explained) &&
        pausedWithoutLoss.length === 0 &&
        stuck.length === 0
    }
    return report
  })

/** A few lines that say what happened and whether the soak passed. */
export const summary = (report: Report): string => {
  const { options } = report
  const outcomes = count(report.leases, (lease) => lease.outcome)
  const faultCounts = count(report.faults, (fault) => fault.kind)
  const format = (counts: Record<string, number>) =>
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(", ") || "none"
  const unexplained = report.overlaps.filter((overlap) => !overlap.explained)
  return [
    `seed ${options.seed}, ${Math.round(options.durationMillis / 1000)} s, ${options.processes} processes x ${options.workersPerProcess} workers, ${options.keys} keys, TTL ${options.ttlMillis} ms`,
    `faults: ${report.faults.length} (${format(faultCounts)})`,
    `leases held: ${report.leases.length} (${format(outcomes)})`,
    `attempts that got no lease: ${format(report.attempts)}`,
    `protected steps: ${report.steps}; overlaps (stale fences): ${report.overlaps.length}, of which outside the design's assumptions (a holder paused beyond its TTL): ${report.overlaps.length - unexplained.length}`,
    `holders paused beyond their TTL while working: ${report.pausedHolders.length}, told LeaseLost: ${report.pausedHolders.length - report.pausedWithoutLoss.length}`,
    ...(report.stuck.length > 0 ? [`stuck or failed workers: ${report.stuck.join(", ")}`] : []),
    ...unexplained.map(
      (overlap) =>
        `VIOLATION: ${overlap.step.holder} stepped on ${overlap.key} with fence ${overlap.step.fence} after a higher fence`
    ),
    ...report.pausedWithoutLoss.map(
      (lease) =>
        `VIOLATION: ${lease.holder} (fence ${lease.fence} on ${lease.key}) was paused beyond its TTL and ended ${lease.outcome}`
    ),
    report.ok ? "result: OK" : "result: FAILED"
  ].join("\n")
}
