/**
 * The soak: `processes` worker processes (`test/chaos/worker.ts`) of `workersPerProcess` fibers each contend for a few
 * keys for a bounded time, each process talking to the lease store (a private `redis-server` with an append-only
 * file, `appendfsync always`) through its own `TcpProxy`, while faults are injected one at a time, drawn from a seeded
 * PRNG (the same seed replays the same faults; timings still vary with the machine): every kind once first, in a
 * seeded order, so that even a short run meets each, then by weight. Protected steps go to a second, healthy
 * `redis-server`: a fenced resource per key that records every step and flags a step whose fence is lower than one it
 * already saw (an older holder acting after a newer one began: an overlap).
 *
 * Faults within the design's assumptions: latency up to TTL/6 each way, replies delayed past the command timeout,
 * partitions (held bytes, up to 2 TTL), replies dropped, connections cut (the command and the subscriber connection
 * alike) and refused for a moment, Redis paused (up to 1.5 TTL), Redis killed and restarted from its append-only
 * file (leases and fences survive: checked at each restart), a worker process paused briefly (up to TTL/5).
 * Outside them: a worker process paused beyond its TTL (1.5 to 2.5 TTL), as in a long GC pause or a suspended VM.
 *
 * The verdict: no overlap at the resource except by a holder that was paused beyond its TTL, every holder whose work
 * was running when such a pause began ended with `LeaseLost`, every failure a worker saw was a typed `LeaseError`,
 * every restart kept the leases and fences, and every worker process exited by itself with its result line.
 */
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Context, Duration, Effect, Option } from "effect"
import * as Redis from "effect/persistence/Redis"
import { LeaseStore } from "leasehold"
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
  | "late-replies"
  | "partition"
  | "drop-replies"
  | "cut"
  | "redis-pause"
  | "redis-restart"
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
  /** For a cut: how many connections of the process it closed (2 or more once its subscriber connection is open). */
  readonly connections?: number | undefined
}

/** What a Redis restart kept: a lease is expected back when it had time left once the new server answered. */
export interface RestartCheck {
  readonly fault: number
  /** Leases that had time left, and those of them found again with the same token. */
  readonly expected: number
  readonly kept: number
  /** Fences checked: the keys that had one (a fence must not go back). */
  readonly fences: number
  /** What went wrong: a lease gone, a lease back past its expiry, a fence lower than before. */
  readonly problems: ReadonlyArray<string>
}

/** A worker process that did not end as it should: still running, reported itself stuck, or exited without its result. */
export interface Unfinished {
  readonly id: string
  readonly how: "still running" | "stuck" | "no result"
  readonly exitCode: number | null | undefined
  readonly stderr: string
}

/** A lease or an attempt that failed with something other than a typed `LeaseError`. */
export interface UntypedFailure {
  readonly holder: string
  readonly key: string
  readonly outcome: Outcome
  readonly detail: string | undefined
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
  readonly restarts: ReadonlyArray<RestartCheck>
  readonly untyped: ReadonlyArray<UntypedFailure>
  /** Worker processes that did not exit in time, reported themselves stuck, or exited without their result line. */
  readonly unfinished: ReadonlyArray<Unfinished>
  /** The longest time a worker took to close its layers after its work. */
  readonly closeMillis: number
  readonly ok: boolean
}

const weights: ReadonlyArray<readonly [FaultKind, number]> = [
  ["latency", 2],
  ["late-replies", 1],
  ["partition", 2],
  ["drop-replies", 1],
  ["cut", 2],
  ["redis-pause", 2],
  ["redis-restart", 2],
  ["process-pause", 1],
  ["process-pause-beyond-ttl", 1]
]

/** Every kind once, in an order drawn from `next` (Fisher-Yates). */
const shuffledKinds = (next: () => number): Array<FaultKind> => {
  const kinds = weights.map(([kind]) => kind)
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!]
  }
  return kinds
}

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

/** A lease as the store's server has it, and each fence counter. */
interface StoreState {
  /** The server's `TIME`, in milliseconds. */
  readonly atMillis: number
  readonly leases: ReadonlyMap<string, { readonly token: string; readonly pttl: number; readonly fence: bigint }>
}

/** Reads every lease and fence of `keys` atomically, with the server's time (pairs of KEYS: lease, fence). */
const storeStateLua = `
local now = redis.call("TIME")
local out = {now[1] .. string.format("%06d", tonumber(now[2]))}
for i = 1, #KEYS, 2 do
  out[#out + 1] = redis.call("HGET", KEYS[i], "token") or ""
  out[#out + 1] = redis.call("PTTL", KEYS[i])
  out[#out + 1] = redis.call("GET", KEYS[i + 1]) or "0"
end
return out
`

/** A restart's expiry checks allow this much for the two servers' clocks and the time between reads. */
const EXPIRY_MARGIN_MILLIS = 25

/** What the restart check found, from the store's state before the kill and once the new server answered. */
const compareRestart = (fault: number, before: StoreState, after: StoreState): RestartCheck => {
  let expected = 0
  let kept = 0
  let fences = 0
  const problems: Array<string> = []
  for (const [key, old] of before.leases) {
    const now = after.leases.get(key)!
    if (old.fence > 0n) fences++
    if (now.fence < old.fence) problems.push(`the fence of ${key} went back from ${old.fence} to ${now.fence}`)
    if (old.token === "" || old.pttl <= 0) continue
    const expiresAt = before.atMillis + old.pttl
    if (expiresAt > after.atMillis + EXPIRY_MARGIN_MILLIS) {
      expected++
      if (now.token === old.token) kept++
      else
        problems.push(
          `the lease on ${key} (fence ${old.fence}, ${Math.round(expiresAt - after.atMillis)} ms left) was gone`
        )
    } else if (expiresAt < after.atMillis - EXPIRY_MARGIN_MILLIS && now.token === old.token) {
      problems.push(
        `the lease on ${key} (fence ${old.fence}) was back ${Math.round(after.atMillis - expiresAt)} ms past its expiry`
      )
    }
  }
  return { fault, expected, kept, fences, problems }
}

const untypedOutcomes: ReadonlySet<Outcome> = new Set(["interrupted", "defect", "error"])

/** Runs the soak (see the module comment); the processes, servers and proxies live as long as the scope. */
export const run = (options: Options) =>
  Effect.gen(function* () {
    const log = options.log ?? (() => {})
    const ttl = options.ttlMillis
    const commandTimeout = ttl
    const store = yield* RedisFaults.makeWith({ appendOnly: true })
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
          commandTimeoutMillis: commandTimeout,
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

    // Read on a fresh direct connection: the server it reads may be a new one. Its round trips come after every
    // command the proxies had passed on (Redis serves each ready connection in turn), so a blackholed store is still.
    const storeKeys = keys.flatMap((key) => {
      const redisKeys = LeaseStore.redisKeys("lease:", key)
      return [redisKeys.lease, redisKeys.fence]
    })
    const readStore = Effect.scoped(
      Effect.gen(function* () {
        const redis = Context.get(yield* RedisTestServer.connectDisposable(store.url), Redis.Redis)
        yield* redis.send("PING")
        const reply = yield* redis.send<Array<string | number>>(
          "EVAL",
          storeStateLua,
          String(storeKeys.length),
          ...storeKeys
        )
        const leases = new Map(
          keys.map((key, index) => [
            key,
            {
              token: String(reply[1 + 3 * index]),
              pttl: Number(reply[2 + 3 * index]),
              fence: BigInt(reply[3 + 3 * index]!)
            }
          ])
        )
        return { atMillis: Number(BigInt(reply[0]!) / 1000n), leases } satisfies StoreState
      })
    )

    const until = Date.now() + options.durationMillis
    yield* Effect.forEach(workers, (worker) => worker.go({ untilEpochMillis: until }), { discard: true })
    log(
      `soak: seed ${options.seed}, ${Math.round(options.durationMillis / 1000)} s, ${options.processes} processes x ${options.workersPerProcess} workers, ${options.keys} keys, TTL ${ttl} ms`
    )

    const next = random(options.seed)
    const firstRound = shuffledKinds(next)
    const faults: Array<Fault> = []
    const restarts: Array<RestartCheck> = []
    const hold = (millis: number) => Effect.sleep(Duration.millis(Math.round(millis)))
    const everyProxy = (f: (proxy: TcpProxy.TcpProxy["Service"]) => Effect.Effect<void>) =>
      Effect.forEach(proxies, f, { discard: true })
    const inject = Effect.gen(function* () {
      const kind = firstRound.shift() ?? pick(next)
      const index = Math.floor(next() * options.processes)
      const proxy = proxies[index]!
      const worker = workers[index]!
      const target = kind === "redis-pause" || kind === "redis-restart" ? "redis" : ids[index]!
      const startedAt = Date.now()
      let detail = ""
      let connections: number | undefined
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
        case "late-replies": {
          const roundTrip = between(next, 1.2 * commandTimeout, 2 * commandTimeout)
          const toServer = Math.round(between(next, 0, roundTrip))
          const toClient = Math.round(roundTrip - toServer)
          const millis = between(next, commandTimeout, 2 * commandTimeout)
          detail = `${toServer}/${toClient} ms (command timeout ${commandTimeout} ms) for ${Math.round(millis)} ms`
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
        case "cut": {
          const millis = between(next, 0, ttl / 2)
          connections = yield* proxy.connections
          detail = `${connections} connections, new ones refused for ${Math.round(millis)} ms`
          yield* proxy.refuse
          yield* proxy.cut
          yield* hold(millis)
          yield* proxy.heal
          break
        }
        case "redis-pause": {
          const millis = between(next, ttl / 10, 1.5 * ttl)
          detail = `${Math.round(millis)} ms`
          yield* Effect.scoped(Effect.andThen(store.pause, hold(millis)))
          break
        }
        case "redis-restart": {
          const millis = between(next, ttl / 10, ttl)
          // Still for the reading: what the store has then is what the kill must keep.
          yield* everyProxy((proxy) => proxy.blackhole)
          const before = yield* readStore
          yield* everyProxy((proxy) => proxy.refuse)
          yield* store.kill
          // The held bytes were for the killed server: gone. Reconnections stay refused until the check has read.
          yield* everyProxy((proxy) => Effect.andThen(proxy.heal, proxy.refuse))
          yield* hold(millis)
          yield* store.start
          const check = compareRestart(faults.length + 1, before, yield* readStore)
          yield* everyProxy((proxy) => proxy.heal)
          restarts.push(check)
          detail = `down ${Math.round(millis)} ms, leases kept ${check.kept}/${check.expected}, fences checked ${check.fences}${check.problems.length > 0 ? `: ${check.problems.join("; ")}` : ""}`
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
      const fault: Fault = { kind, target, startedAt, endedAt: Date.now(), detail, connections }
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
          Effect.map((code) => ({ worker, code }))
        ),
      { concurrency: "unbounded" }
    )

    const lines = workers.flatMap((worker) => [...worker.lines()])
    const leases = lines.filter((line): line is LeaseRecord => line.type === "lease")
    const failedAttempts = lines.filter((line) => line.type === "attempt")
    const attempts = count(failedAttempts, (line) => line.outcome)
    const untyped: Array<UntypedFailure> = [...leases, ...failedAttempts]
      .filter((record) => untypedOutcomes.has(record.outcome))
      .map(({ holder, key, outcome, detail }) => ({ holder, key, outcome, detail }))
    const unfinished: Array<Unfinished> = []
    let closeMillis = 0
    for (const { worker, code } of exits) {
      const last = worker.lines().at(-1)
      const exitCode = Option.getOrUndefined(code)
      const how = Option.isNone(code)
        ? "still running"
        : worker.lines().some((line) => line.type === "stuck")
          ? "stuck"
          : exitCode !== 0 || last?.type !== "result"
            ? "no result"
            : undefined
      if (how !== undefined) unfinished.push({ id: worker.id, how, exitCode, stderr: worker.stderr().slice(-2_000) })
      if (last?.type === "result") closeMillis = Math.max(closeMillis, last.closeMillis)
    }

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
      restarts,
      untyped,
      unfinished,
      closeMillis,
      ok:
        leases.length > 0 &&
        overlaps.every((overlap) => overlap.explained) &&
        pausedWithoutLoss.length === 0 &&
        restarts.every((restart) => restart.problems.length === 0) &&
        untyped.length === 0 &&
        unfinished.length === 0
    }
    return report
  })

/** The last fault that was running at `at` or had ended at most 2 TTL before: what a loss at `at` is owed to. */
const faultAround = (faults: ReadonlyArray<Fault>, at: number, ttlMillis: number): Fault | undefined =>
  faults.findLast((fault) => fault.startedAt <= at && at <= fault.endedAt + 2 * ttlMillis)

/** A few lines that say what happened and whether the soak passed. */
export const summary = (report: Report): string => {
  const { options } = report
  const outcomes = count(report.leases, (lease) => lease.outcome)
  const lossesByFault = count(
    report.leases.filter((lease) => lease.outcome.startsWith("lost:")),
    (lease) => faultAround(report.faults, lease.endedAt, options.ttlMillis)?.kind ?? "none"
  )
  const faultCounts = count(report.faults, (fault) => fault.kind)
  const format = (counts: Record<string, number>) =>
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(", ") || "none"
  const unexplained = report.overlaps.filter((overlap) => !overlap.explained)
  const cuts = report.faults.filter((fault) => fault.kind === "cut")
  const expected = report.restarts.reduce((sum, restart) => sum + restart.expected, 0)
  const kept = report.restarts.reduce((sum, restart) => sum + restart.kept, 0)
  const fences = report.restarts.reduce((sum, restart) => sum + restart.fences, 0)
  const processes = options.processes
  return [
    `seed ${options.seed}, ${Math.round(options.durationMillis / 1000)} s, ${processes} processes x ${options.workersPerProcess} workers, ${options.keys} keys, TTL ${options.ttlMillis} ms`,
    `faults: ${report.faults.length} (${format(faultCounts)})`,
    `cuts: ${cuts.length}, of which closed a subscriber connection too (2 or more connections): ${cuts.filter((cut) => (cut.connections ?? 0) >= 2).length}`,
    `Redis restarts from the append-only file: ${report.restarts.length}; leases with time left kept: ${kept}/${expected}, fences checked: ${fences}; restarts that lost a lease or a fence: ${report.restarts.filter((restart) => restart.problems.length > 0).length}`,
    `leases held: ${report.leases.length} (${format(outcomes)})`,
    `leases lost, by the fault they ended in (or up to 2 TTL after): ${format(lossesByFault)}`,
    `attempts that got no lease: ${format(report.attempts)}`,
    `failures other than a typed LeaseError (defects, other errors, bare interruptions): ${report.untyped.length}`,
    `protected steps: ${report.steps}; overlaps (stale fences): ${report.overlaps.length}, of which outside the design's assumptions (a holder paused beyond its TTL): ${report.overlaps.length - unexplained.length}`,
    `holders paused beyond their TTL while working: ${report.pausedHolders.length}, told LeaseLost: ${report.pausedHolders.length - report.pausedWithoutLoss.length}`,
    `worker processes: ${processes}, exited by themselves with their result: ${processes - report.unfinished.length} (closing took at most ${report.closeMillis} ms); stuck or without a result: ${report.unfinished.length}`,
    ...report.unfinished.map(
      (worker) =>
        `VIOLATION: worker ${worker.id} ${worker.how === "no result" ? `exited (${worker.exitCode}) without its result line` : worker.how === "stuck" ? "reported itself stuck" : "was still running"}${worker.stderr === "" ? "" : `; stderr: ${worker.stderr.trim().slice(-300)}`}`
    ),
    ...report.untyped.map(
      (failure) =>
        `VIOLATION: ${failure.holder} on ${failure.key} ended ${failure.outcome}${failure.detail === undefined ? "" : `: ${failure.detail}`}`
    ),
    ...report.restarts.flatMap((restart) =>
      restart.problems.map((problem) => `VIOLATION: restart (fault ${restart.fault}): ${problem}`)
    ),
    ...Object.entries(
      count(
        unexplained,
        (overlap) => `${overlap.step.holder} stepped on ${overlap.key} with fence ${overlap.step.fence}`
      )
    ).map(([what, n]) => `VIOLATION: ${what} after a higher fence (${n} ${n === 1 ? "step" : "steps"})`),
    ...report.pausedWithoutLoss.map(
      (lease) =>
        `VIOLATION: ${lease.holder} (fence ${lease.fence} on ${lease.key}) was paused beyond its TTL and ended ${lease.outcome}`
    ),
    report.ok ? "result: OK" : "result: FAILED"
  ].join("\n")
}
