/**
 * `seq` and `par64`: acquire+release cycles on fresh keys, by one worker or by many concurrent workers sharing the
 * subject's client, for a fixed time: cycles per second and the latency of a cycle.
 *
 * @since 0.1.0
 */
import { bounded, messageOf, now } from "../clock.ts"
import { type Live, progress } from "../live.ts"
import type { Admin } from "../redis.ts"
import { collector, type Metrics, rotate, type ScenarioResult } from "../results.ts"
import { percentile } from "../stats.ts"
import type { Spec } from "../subjects/Subject.ts"

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
 * Runs `seq` (concurrency 1) or `par64` (concurrency 64): a warm-up per subject, then `rounds` rounds, the subjects
 * interleaved in a rotating order, the server flushed before each round.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runThroughputScenario = async (
  id: "seq" | "par64",
  live: ReadonlyArray<Live>,
  admin: Admin,
  settings: ThroughputSettings
): Promise<ScenarioResult> => {
  const results = collector(
    live.map((l) => l.spec),
    id
  )
  const runnable = live.filter((l) => l.spec.unsupported[id] === undefined)
  for (const l of runnable) if (l.error !== undefined) results.error(l.spec.id, l.error)
  const ready = runnable.filter((l) => l.subject?.acquireRelease !== undefined)
  const options = (round: string, durationMs: number, spec: Spec) => ({
    concurrency: settings.concurrency,
    durationMs,
    keyPrefix: `bench:${id}:${round}:${spec.id}`,
    maxCycles: settings.maxCycles
  })
  for (const l of ready) {
    await runThroughput(l.subject!.acquireRelease!, options("warmup", settings.warmupMs, l.spec)).catch(() => {})
  }
  for (let round = 0; round < settings.rounds; round++) {
    await admin.flushAll()
    for (const l of rotate(ready, round)) {
      try {
        const { metrics, lastError } = await runThroughput(
          l.subject!.acquireRelease!,
          options(String(round), settings.durationMs, l.spec)
        )
        results.add(l.spec.id, metrics)
        if (lastError !== undefined) results.error(l.spec.id, `${metrics.errors} failed cycles: ${lastError}`)
        progress(`${id} round ${round + 1}/${settings.rounds} ${l.spec.name}: ${Math.round(metrics.cyclesPerSec!)}/s`)
      } catch (error) {
        results.error(l.spec.id, messageOf(error))
      }
    }
  }
  const seconds = settings.durationMs / 1000
  return {
    id,
    setup:
      `${settings.concurrency === 1 ? "one worker" : `${settings.concurrency} concurrent workers on one client`}, ` +
      `acquire+release on a fresh key per cycle, ${settings.rounds} rounds of ${seconds} s per library, interleaved`,
    rows: results.rows()
  }
}
