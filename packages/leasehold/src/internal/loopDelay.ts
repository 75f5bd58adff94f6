/**
 * How late this process's timers run, from Node's event-loop delay histogram (`perf_hooks.monitorEventLoopDelay`):
 * the renewer gives up on a lease earlier by that much, so that a process whose timers fire late (both cores busy, a
 * long GC) still interrupts the work before the store expires the lease. No constant margin fits both a loaded
 * machine and a quiet one (docs/performance.md, "When timers run late").
 *
 * One pair of histograms per process, started by the first lease watched and stopped when the last is released
 * (their timers are unref'd by Node: they never keep a process alive). What it saw is remembered for a few seconds across a stop, so
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

/**
 * The process's two histograms, `null` where the runtime has none to give (the margin is then 0). Two, reset in
 * turn at each new window: a reset drops the interval in progress, so a stall that a read follows at once (the
 * renewer reads right after its own late timer) would be lost with one; the other histogram still holds it.
 */
let histograms: readonly [IntervalHistogram, IntervalHistogram] | null | undefined
/** Which histogram the next window resets. */
let turn: 0 | 1 = 0
let watchers = 0
let windowStart = 0
/** The worst lateness of each past window, the newest last. */
let past: Array<number> = []
/** When the histograms were last stopped: a lease taken soon after still sees the delays before it. */
let stoppedAt = Number.NEGATIVE_INFINITY
/** The last lateness read from the histograms, and when (see `reuseMillis`). */
let computedAt = Number.NEGATIVE_INFINITY
let computed = 0

const histogramsOf = (): readonly [IntervalHistogram, IntervalHistogram] | null => {
  if (histograms === undefined) {
    try {
      histograms = [
        monitorEventLoopDelay({ resolution: resolutionMillis }),
        monitorEventLoopDelay({ resolution: resolutionMillis })
      ]
    } catch {
      histograms = null
    }
  }
  return histograms
}

const start = (monitors: readonly [IntervalHistogram, IntervalHistogram]): void => {
  const now = performance.now()
  if (now - stoppedAt > windows * windowMillis) past = []
  for (const monitor of monitors) {
    // Reset before enabling: a histogram enabled again would record the whole pause as one late sample.
    monitor.reset()
    monitor.enable()
  }
  windowStart = now
  computedAt = Number.NEGATIVE_INFINITY
}

/** Keeps what the current window saw among the past windows. */
const closeWindow = (lateness: number): void => {
  past.push(lateness)
  if (past.length > windows - 1) past.shift()
}

/** Each sample is the interval a histogram's timer took; anything beyond its resolution is lateness. */
const latenessOf = (monitor: IntervalHistogram): number =>
  monitor.count > 0 ? Math.max(0, monitor.max / 1e6 - resolutionMillis) : 0

const currentLateness = (monitors: readonly [IntervalHistogram, IntervalHistogram]): number =>
  Math.max(latenessOf(monitors[0]), latenessOf(monitors[1]))

/**
 * How long a computed lateness is reused: the renewer asks once per lease each time it looks at its leases, and the
 * histograms (native getters) need not be read thousands of times a turn for a value that moves at their resolution.
 */
const reuseMillis = 1

/** How late the histograms' timers fired at worst in the recent windows, in milliseconds. */
const recentLatenessMillis = (monitors: readonly [IntervalHistogram, IntervalHistogram]): number => {
  const now = performance.now()
  if (now - computedAt < reuseMillis) return computed
  computedAt = now
  computed = measuredLateness(monitors, now)
  return computed
}

/** Reads the histograms: the worst lateness of this window and the past ones, closing this window when it is over. */
const measuredLateness = (monitors: readonly [IntervalHistogram, IntervalHistogram], now: number): number => {
  const current = currentLateness(monitors)
  if (now - windowStart >= windowMillis) {
    // Windows nobody read are merged into this one: their samples are all in the histograms.
    closeWindow(current)
    monitors[turn].reset()
    turn = turn === 0 ? 1 : 0
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
  const monitors = clock === defaultClock ? histogramsOf() : null
  if (monitors === null) return none
  if (watchers++ === 0) start(monitors)
  const bound = ttlMillis / 4
  let released = false
  return {
    millis: () => (released ? 0 : Math.min(bound, hops * recentLatenessMillis(monitors))),
    release: () => {
      if (released) return
      released = true
      if (--watchers > 0) return
      closeWindow(currentLateness(monitors))
      for (const monitor of monitors) monitor.disable()
      stoppedAt = performance.now()
    }
  }
}
