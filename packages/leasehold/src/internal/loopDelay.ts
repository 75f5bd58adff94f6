/**
 * How late this process's timers run, from Node's event-loop delay histogram (`perf_hooks.monitorEventLoopDelay`):
 * the renewer gives up on a lease earlier by that much, so that a process whose timers fire late (both cores busy, a
 * long GC) still interrupts the work before the store expires the lease. A constant margin cannot: the lateness of a
 * loaded machine is tens of milliseconds, of a quiet one well under one.
 *
 * One histogram per process, started by the first lease watched and stopped when the last is released (its timer
 * is unref'd by Node: it never keeps a process alive). What it saw is remembered for a few seconds across a stop, so
 * a process that holds one lease after another keeps its history.
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Clock, Context } from "effect"

/** The histogram's sampling interval: a timer armed this often, its lateness recorded. */
const resolutionMillis = 10

/**
 * The delays are kept per window of this length, for the last `windows` windows: what the process saw in the last
 * few seconds. Stalls on a loaded machine come in bursts seconds apart; a memory shorter than that forgets the last
 * one just before the next.
 */
const windowMillis = 1_000
const windows = 5

/**
 * Lateness is counted twice: the renewer's timer fires late, then the interruption of the work runs on the same
 * loaded loop.
 */
const hops = 2

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>

/** The process's histogram; `null` where the runtime has none to give (the margin is then 0). */
let histogram: IntervalHistogram | null | undefined
let watchers = 0
let windowStart = 0
/** The worst lateness of each past window, the newest last. */
let past: Array<number> = []
/** When the histogram was last stopped: a lease taken soon after still sees the delays before it. */
let stoppedAt = Number.NEGATIVE_INFINITY

const histogramOf = (): IntervalHistogram | null => {
  if (histogram === undefined) {
    try {
      histogram = monitorEventLoopDelay({ resolution: resolutionMillis })
    } catch {
      histogram = null
    }
  }
  return histogram
}

const start = (monitor: IntervalHistogram): void => {
  const now = performance.now()
  if (now - stoppedAt > windows * windowMillis) past = []
  // Reset before enabling: a histogram enabled again would record the whole pause as one late sample.
  monitor.reset()
  monitor.enable()
  windowStart = now
}

/** Keeps what the current window saw among the past windows. */
const closeWindow = (lateness: number): void => {
  past.push(lateness)
  if (past.length > windows - 1) past.shift()
}

/** Each sample is the interval the histogram's timer took; anything beyond its resolution is lateness. */
const currentLateness = (monitor: IntervalHistogram): number =>
  monitor.count > 0 ? Math.max(0, monitor.max / 1e6 - resolutionMillis) : 0

/** How late the histogram's own timer fired at worst in the recent windows, in milliseconds. */
const recentLatenessMillis = (monitor: IntervalHistogram): number => {
  const current = currentLateness(monitor)
  const now = performance.now()
  if (now - windowStart >= windowMillis) {
    // Windows nobody read are merged into this one: their samples are all in the histogram.
    closeWindow(current)
    monitor.reset()
    windowStart = now
  }
  return Math.max(current, ...past)
}

/**
 * The lateness margin of one auto-renewed lease: `millis()` is how much earlier than its constant reaction time the
 * renewer gives up (twice the recent event-loop delay, at most a quarter of the TTL); `release()` ends the watch
 * (idempotent).
 */
export interface Lateness {
  readonly millis: () => number
  readonly release: () => void
}

const none: Lateness = { millis: () => 0, release: () => {} }

/** Effect's own clock: its timers are the event loop's. */
const defaultClock = Context.get(Context.empty(), Clock.Clock)

/**
 * Watches the event-loop delay for a lease of `ttlMillis`. Under a clock other than Effect's default (a
 * `TestClock`), the renewer's timers do not run on the event loop and the margin is 0, so tests that drive time stay
 * exact.
 */
export const watch = (clock: Clock.Clock, ttlMillis: number): Lateness => {
  const monitor = clock === defaultClock ? histogramOf() : null
  if (monitor === null) return none
  if (watchers++ === 0) start(monitor)
  const bound = ttlMillis / 4
  let released = false
  return {
    millis: () => (released ? 0 : Math.min(bound, hops * recentLatenessMillis(monitor))),
    release: () => {
      if (released) return
      released = true
      if (--watchers > 0) return
      closeWindow(currentLateness(monitor))
      monitor.disable()
      stoppedAt = performance.now()
    }
  }
}
