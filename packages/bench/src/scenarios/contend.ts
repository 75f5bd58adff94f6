/**
 * `contend`: 8 workers of one process, sharing the subject's client, take turns on one key with 1 ms of work per
 * hold. Overlaps are counted by an in-process counter.
 *
 * @since 0.1.0
 */
import { bounded, messageOf, now } from "../clock.ts"
import { type Live, progress } from "../live.ts"
import type { Admin } from "../redis.ts"
import { collector, type Metrics, rotate, type ScenarioResult } from "../results.ts"
import { analyse, counterGuard, runWorkers, type WorkerReport } from "./contention.ts"

/**
 * Settings of `contend` (and of `contend-procs`, with the workers spread over processes).
 *
 * @category models
 * @since 0.1.0
 */
export interface ContendSettings {
  readonly rounds: number
  readonly durationMs: number
  readonly warmupMs: number
  readonly workers: number
  readonly holdMs: number
  readonly graceMs: number
}

/**
 * The metrics of one run: `analyse`'s figures plus the guard's `overlaps`, the failed waits (`failures`) and the
 * workers still waiting after the grace period (`stragglers`).
 *
 * @category scenarios
 * @since 0.1.0
 */
export const contendMetrics = (
  report: WorkerReport,
  workerIds: ReadonlyArray<number>,
  startAt: number,
  durationMs: number
): Metrics => ({
  ...analyse(report.events, workerIds, startAt, startAt + durationMs),
  overlaps: report.overlaps,
  failures: report.failures,
  stragglers: report.stragglers
})

/**
 * Runs `contend`: a short warm-up per subject, then `rounds` rounds, subjects interleaved, a fresh key each run.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runContendScenario = async (
  live: ReadonlyArray<Live>,
  admin: Admin,
  settings: ContendSettings
): Promise<ScenarioResult> => {
  const results = collector(
    live.map((l) => l.spec),
    "contend"
  )
  const runnable = live.filter((l) => l.spec.unsupported.contend === undefined)
  for (const l of runnable) if (l.error !== undefined) results.error(l.spec.id, l.error)
  const ready = runnable.filter((l) => l.subject?.withLock !== undefined)
  const workerIds = Array.from({ length: settings.workers }, (_, i) => i)
  const run = (l: Live, key: string, durationMs: number) => {
    const startAt = now() + 5
    const options = { key, workerIds, startAt, durationMs, holdMs: settings.holdMs, graceMs: settings.graceMs }
    const running = runWorkers(l.subject!.withLock!, counterGuard(), options)
    return bounded(running, durationMs + settings.graceMs + 5_000, "the contend workers").then((report) => ({
      report,
      metrics: contendMetrics(report, workerIds, startAt, durationMs)
    }))
  }
  for (const l of ready) await run(l, `bench:contend:warmup:${l.spec.id}`, settings.warmupMs).catch(() => {})
  for (let round = 0; round < settings.rounds; round++) {
    await admin.flushAll()
    for (const l of rotate(ready, round)) {
      try {
        const { report, metrics } = await run(l, `bench:contend:${round}:${l.spec.id}`, settings.durationMs)
        results.add(l.spec.id, metrics)
        if (report.lastError !== undefined)
          results.error(l.spec.id, `${report.failures} failed waits: ${report.lastError}`)
        if (report.stragglers > 0)
          results.error(l.spec.id, `${report.stragglers} workers still waiting after the grace period`)
        progress(
          `contend round ${round + 1}/${settings.rounds} ${l.spec.name}: ` +
            `${Math.round(metrics.ownerChangesPerSec!)} owner changes/s, gap p99 ${metrics.gapP99!.toFixed(2)} ms`
        )
      } catch (error) {
        results.error(l.spec.id, messageOf(error))
      }
    }
  }
  return {
    id: "contend",
    setup:
      `${settings.workers} workers in one process sharing one client, one key, ${settings.holdMs} ms of work ` +
      `(a timer) per hold, ${settings.rounds} rounds of ${settings.durationMs / 1000} s per library, interleaved`,
    rows: results.rows()
  }
}
