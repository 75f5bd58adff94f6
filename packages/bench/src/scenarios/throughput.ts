/**
 * `seq` and `par64`: acquire+release cycles on fresh keys, by one worker or by many concurrent workers sharing the
 * subject's client, for a fixed time: cycles per second and the latency of a cycle.
 *
 * @since 0.1.0
 */
import { bounded, messageOf, now } from "../clock.ts"
import { progress } from "../live.ts"
import type { Admin } from "../redis.ts"
import { collector, type Metrics, rotate, type ScenarioResult } from "../results.ts"
import { percentile } from "../stats.ts"
import type { Spec } from "../subjects/Subject.ts"
import { spawnWorker, type WorkerProcess } from "../workerProcess.ts"

/**
 * Options of one throughput round.
 *
 * @category models
 * @since 0.1.0
 */
export interface ThroughputOptions {
  readonly concurrency: number
  readonly durationMs: number
  readonly keyPrefix: string
  /** A cap on the cycles of the round (a bound besides the duration). */
  readonly maxCycles: number
}

/**
 * Runs `concurrency` workers, each doing acquire+release cycles on a key of its own, fresh every cycle, until the
 * duration is over. Metrics: `cyclesPerSec`, `p50` and `p99` (ms per cycle), `errors` (failed cycles).
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runThroughput = async (
  acquireRelease: (key: string) => Promise<void>,
  options: ThroughputOptions
): Promise<{ readonly metrics: Metrics; readonly lastError: string | undefined }> => {
  const latencies: Array<number> = []
  let errors = 0
  let lastError: string | undefined
  let started = 0
  const start = now()
  const deadline = start + options.durationMs
  const worker = async (id: number) => {
    for (let cycle = 0; now() < deadline && started < options.maxCycles; cycle++) {
      started++
      const t0 = now()
      try {
        await acquireRelease(`${options.keyPrefix}:${id}:${cycle}`)
        latencies.push(now() - t0)
      } catch (error) {
        errors++
        lastError = messageOf(error)
      }
    }
  }
  const workers = Array.from({ length: options.concurrency }, (_, id) => worker(id))
  await bounded(Promise.all(workers), options.durationMs + 30_000, "the throughput workers")
  const elapsed = now() - start
  return {
    metrics: {
      cyclesPerSec: (latencies.length / elapsed) * 1000,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      errors
    },
    lastError
  }
}

/**
 * Settings of `seq` or `par64`.
 *
 * @category models
 * @since 0.1.0
 */
export interface ThroughputSettings {
  readonly rounds: number
  readonly durationMs: number
  readonly warmupMs: number
  readonly concurrency: number
  readonly maxCycles: number
}

/**
 * Runs `seq` (concurrency 1) or `par64` (concurrency 64): each library in a worker process of its own, for the whole
 * scenario, so that none runs in the garbage and timers another left behind (node-redis keeps a 5 s timer alive per
 * command by default: after a fast library, the next one in the same process ran at a third of its speed). A warm-up
 * per library, then `rounds` rounds, the libraries interleaved in a rotating order (one runs at a time), the server
 * flushed before each round.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runThroughputScenario = async (
  id: "seq" | "par64",
  specs: ReadonlyArray<Spec>,
  url: string,
  admin: Admin,
  settings: ThroughputSettings,
  ttlMillis: number
): Promise<ScenarioResult> => {
  const results = collector(specs, id)
  const runnable = specs.filter((spec) => spec.unsupported[id] === undefined)
  const options = (round: string, durationMs: number, spec: Spec): ThroughputOptions => ({
    concurrency: settings.concurrency,
    durationMs,
    keyPrefix: `bench:${id}:${round}:${spec.id}`,
    maxCycles: settings.maxCycles
  })
  const go = async (worker: WorkerProcess, round: string, durationMs: number, spec: Spec) => {
    const answer = await worker.request(
      { type: "throughput-go", options: options(round, durationMs, spec) },
      durationMs + 60_000
    )
    if (answer.type !== "throughput") throw new Error(`unexpected answer ${answer.type}`)
    return answer
  }
  const ready: Array<{ readonly spec: Spec; readonly worker: WorkerProcess }> = []
  try {
    for (const spec of runnable) {
      let worker: WorkerProcess | undefined
      try {
        worker = await spawnWorker()
        await worker.request({ type: "contend-setup", subject: spec.id, url, ttlMillis }, 30_000)
        ready.push({ spec, worker })
        await go(worker, "warmup", settings.warmupMs, spec).catch(() => {})
      } catch (error) {
        // Only a failed start or setup lands here (the warm-up's failures are ignored): the worker is not in `ready`.
        if (worker !== undefined) await worker.close()
        results.error(spec.id, messageOf(error))
      }
    }
    for (let round = 0; round < settings.rounds; round++) {
      await admin.flushAll()
      for (const { spec, worker } of rotate(ready, round)) {
        try {
          const { metrics, lastError } = await go(worker, String(round), settings.durationMs, spec)
          results.add(spec.id, metrics)
          if (lastError !== undefined) results.error(spec.id, `${metrics.errors} failed cycles: ${lastError}`)
          progress(`${id} round ${round + 1}/${settings.rounds} ${spec.name}: ${Math.round(metrics.cyclesPerSec!)}/s`)
        } catch (error) {
          results.error(spec.id, messageOf(error))
        }
      }
    }
  } finally {
    await Promise.all(ready.map(({ worker }) => worker.close()))
  }
  const seconds = settings.durationMs / 1000
  return {
    id,
    setup:
      `${settings.concurrency === 1 ? "one worker" : `${settings.concurrency} concurrent workers on one client`}, ` +
      `acquire+release on a fresh key per cycle, ${settings.rounds} rounds of ${seconds} s per library, interleaved, ` +
      "each library in a process of its own",
    rows: results.rows()
  }
}
