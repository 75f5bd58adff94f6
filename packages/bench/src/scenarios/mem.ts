/**
 * `mem`: heap and RSS before and after many acquire+release cycles, each subject in a fresh worker process run with
 * `--expose-gc`, with the timers still pending: leaked fibers, timers or closures show up as growth.
 *
 * @since 0.1.0
 */
import { bounded, now } from "../clock.ts"
import { progress } from "../live.ts"
import { collectGarbage, inPool } from "../pool.ts"
import type { MemOptions } from "../protocol.ts"
import type { Admin } from "../redis.ts"
import { collector, type Metrics, type ScenarioResult } from "../results.ts"
import { specOf } from "../subjects/index.ts"
import type { Spec } from "../subjects/Subject.ts"
import { measureInFreshWorker } from "../workerProcess.ts"

const MB = 1024 * 1024

const pendingTimers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length

/**
 * In the worker: 1,000 warm-up cycles, GC, a snapshot (heap, RSS, pending timers), half the cycles, GC, a snapshot,
 * the other half, GC, a snapshot. Caches and buffers that grow once show up in the first half; a leak keeps growing
 * in the second, so `heapGrowthPerCycle` is measured over the second half.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const measureMem = async (options: MemOptions): Promise<Metrics> => {
  const subject = await specOf(options.subject).make({ url: options.url, ttlMillis: options.ttlMillis })
  try {
    const acquireRelease = subject.acquireRelease
    if (acquireRelease === undefined) throw new Error(`${options.subject} has no acquire/release`)
    let errors = 0
    const cycles = (count: number, prefix: string) =>
      inPool(count, options.concurrency, (i) =>
        acquireRelease(`bench:mem:${options.subject}:${prefix}:${i}`).catch(() => {
          errors++
        })
      )
    const snapshot = async () => {
      await collectGarbage()
      return { ...process.memoryUsage(), timers: pendingTimers() }
    }
    const half = Math.floor(options.cycles / 2)
    await cycles(1000, "warm")
    const before = await snapshot()
    const start = now()
    await cycles(half, "first")
    const firstMs = now() - start
    const middle = await snapshot()
    const restart = now()
    await cycles(options.cycles - half, "second")
    const elapsed = firstMs + (now() - restart)
    const after = await snapshot()
    return {
      cycles: options.cycles,
      cyclesPerSec: (options.cycles / elapsed) * 1000,
      errors,
      heapBeforeMB: before.heapUsed / MB,
      heapMiddleMB: middle.heapUsed / MB,
      heapAfterMB: after.heapUsed / MB,
      heapGrowthPerCycle: (after.heapUsed - middle.heapUsed) / (options.cycles - half),
      rssBeforeMB: before.rss / MB,
      rssAfterMB: after.rss / MB,
      timersBefore: before.timers,
      timersAfter: after.timers
    }
  } finally {
    await bounded(subject.close(), 10_000, "close").catch(() => {})
  }
}

/**
 * Settings of `mem`.
 *
 * @category models
 * @since 0.1.0
 */
export interface MemSettings {
  readonly subjects: ReadonlyArray<string>
  readonly cycles: number
  readonly concurrency: number
  readonly ttlMillis: number
}

/**
 * Runs `mem`: one fresh worker process per subject, the server flushed before each.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runMemScenario = async (
  specs: ReadonlyArray<Spec>,
  url: string,
  admin: Admin,
  settings: MemSettings
): Promise<ScenarioResult> => {
  const chosen = specs.filter((spec) => spec.id === "leasehold" || settings.subjects.includes(spec.id))
  const results = collector(chosen, "mem")
  for (const spec of chosen.filter((s) => s.unsupported.mem === undefined)) {
    await admin.flushAll()
    const options: MemOptions = { ...settings, subject: spec.id, url }
    const m = await measureInFreshWorker({ type: "mem", options }, settings.cycles * 2 + 60_000, (error) =>
      results.error(spec.id, error)
    )
    if (m === undefined) continue
    results.add(spec.id, m)
    progress(
      `mem ${spec.name}: heap ${m.heapBeforeMB!.toFixed(1)} -> ${m.heapMiddleMB!.toFixed(1)} -> ` +
        `${m.heapAfterMB!.toFixed(1)} MB, ` +
        `timers ${m.timersBefore} -> ${m.timersAfter}`
    )
  }
  return {
    id: "mem",
    setup:
      `${settings.cycles.toLocaleString("en-US")} acquire+release cycles (${settings.concurrency} at a time) after ` +
      `1,000 warm-up cycles, each library in a fresh process (--expose-gc); heap and RSS after GC, before, halfway and ` +
      `after; growth is measured over the second half`,
    rows: results.rows()
  }
}
