/**
 * `contend` and `contend-procs`: workers taking turns on one key, each holding it for a moment of work. The workers
 * record when they entered and left the hold; `analyse` turns those records into rates, hand-off gaps and fairness.
 *
 * @since 0.1.0
 */
import { messageOf, now, sleep } from "../clock.ts"
import type { Metrics } from "../results.ts"
import { jain, percentile } from "../stats.ts"

/**
 * One hold: the worker, and when it entered and left (ms on the shared monotonic clock).
 *
 * @category models
 * @since 0.1.0
 */
export type HoldEvent = readonly [worker: number, enter: number, leave: number]

/**
 * Marks the hold for overlap detection: `enter` returns whether another worker was inside too.
 *
 * @category models
 * @since 0.1.0
 */
export interface Guard {
  readonly enter: () => Promise<boolean>
  readonly leave: () => Promise<void>
}

/**
 * An in-process guard: a counter of the workers inside the hold.
 *
 * @category constructors
 * @since 0.1.0
 */
export const counterGuard = (): Guard => {
  let inside = 0
  return {
    enter: async () => ++inside > 1,
    leave: async () => {
      inside--
    }
  }
}

/**
 * Options of one contention run.
 * - `startAt`: when the workers start (shared clock), so that workers of several processes start together.
 * - `graceMs`: how long after the end the workers may take to finish the acquisition they are waiting for.
 *
 * @category models
 * @since 0.1.0
 */
export interface ContendOptions {
  readonly key: string
  readonly workerIds: ReadonlyArray<number>
  readonly startAt: number
  readonly durationMs: number
  readonly holdMs: number
  readonly graceMs: number
}

/**
 * What the workers of one process saw: their holds, the overlaps their guard found, the failed waits (a library
 * giving up, an error), and the workers still waiting when the grace period ended.
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkerReport {
  readonly events: ReadonlyArray<HoldEvent>
  readonly overlaps: number
  readonly failures: number
  readonly lastError: string | undefined
  readonly stragglers: number
}

/**
 * Runs the workers: each loops `withLock(key, hold)` until the end of the run, where the hold enters the guard, works
 * for `holdMs` (a timer: I/O-like work that leaves the event loop free), and leaves the guard.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runWorkers = async (
  withLock: <A>(key: string, work: () => Promise<A>) => Promise<A>,
  guard: Guard,
  options: ContendOptions
): Promise<WorkerReport> => {
  const events: Array<HoldEvent> = []
  let overlaps = 0
  let failures = 0
  let lastError: string | undefined
  const deadline = options.startAt + options.durationMs
  const hold = (worker: number) => async () => {
    const enter = now()
    if (await guard.enter()) overlaps++
    await sleep(options.holdMs)
    await guard.leave()
    events.push([worker, enter, now()])
  }
  const worker = async (id: number) => {
    while (now() < deadline) {
      try {
        await withLock(options.key, hold(id))
      } catch (error) {
        failures++
        lastError = messageOf(error)
        await sleep(1)
      }
    }
  }
  const wait = options.startAt - now()
  if (wait > 0) await sleep(wait)
  const running = options.workerIds.map((id) => {
    let done = false
    return {
      promise: worker(id).finally(() => {
        done = true
      }),
      done: () => done
    }
  })
  let graceTimer: ReturnType<typeof setTimeout> | undefined
  const graceEnd = new Promise<void>((resolve) => {
    graceTimer = setTimeout(resolve, Math.max(0, deadline + options.graceMs - now()))
  })
  await Promise.race([Promise.all(running.map((r) => r.promise)), graceEnd])
  clearTimeout(graceTimer)
  const stragglers = running.filter((r) => !r.done()).length
  return { events: [...events], overlaps, failures, lastError, stragglers }
}

/**
 * Figures of a contention run, from the holds of every worker, counting holds that began inside the window:
 * `acquisitionsPerSec`, `ownerChangesPerSec` (consecutive holds by different workers), `gapP50`/`gapP99` (ms from one
 * holder leaving to a different worker entering), `minPerWorker`/`maxPerWorker` and `jain` (holds per worker),
 * `timeOverlaps` (holds that began before the previous one ended: a cross-check of the guard).
 *
 * @category scenarios
 * @since 0.1.0
 */
export const analyse = (
  events: ReadonlyArray<HoldEvent>,
  workerIds: ReadonlyArray<number>,
  windowStart: number,
  windowEnd: number
): Metrics => {
  const sorted = [...events].sort((a, b) => a[1] - b[1])
  const perWorker = new Map<number, number>(workerIds.map((id) => [id, 0]))
  const gaps: Array<number> = []
  let acquisitions = 0
  let ownerChanges = 0
  let timeOverlaps = 0
  sorted.forEach((event, index) => {
    const previous = sorted[index - 1]
    if (previous !== undefined && event[1] < previous[2]) timeOverlaps++
    if (event[1] < windowStart || event[1] > windowEnd) return
    acquisitions++
    perWorker.set(event[0], (perWorker.get(event[0]) ?? 0) + 1)
    if (previous !== undefined && previous[0] !== event[0]) {
      ownerChanges++
      gaps.push(event[1] - previous[2])
    }
  })
  const seconds = (windowEnd - windowStart) / 1000
  const counts = [...perWorker.values()]
  return {
    acquisitionsPerSec: acquisitions / seconds,
    ownerChangesPerSec: ownerChanges / seconds,
    gapP50: percentile(gaps, 50),
    gapP99: percentile(gaps, 99),
    minPerWorker: Math.min(...counts),
    maxPerWorker: Math.max(...counts),
    jain: jain(counts),
    timeOverlaps
  }
}
