import { Effect } from "effect"

/**
 * Bounds the commands in flight with ONE timer, instead of a race per command (`Effect.timeoutOrElse` forks two
 * fibers and arms a timer for each command, a quarter of a lease cycle's CPU). All commands of a watchdog share one
 * bound, so their deadlines come in the order they started: the in-flight set is kept in insertion order, the timer
 * is armed for the oldest deadline, and when it fires it expires every overdue command and re-arms for the next.
 *
 * The bound is on a real round trip, so it runs on the process's real timers (a `TestClock` does not move it). The
 * timer keeps the process alive while a command is in flight, as any pending timeout does: a command can sit in a
 * client's queue with no socket open (node-redis's offline queue between reconnects), and its bound must still fire
 * for the caller to hear of it. With nothing in flight the timer is unreferenced, so an idle store holds nothing.
 */
export interface CommandWatchdog {
  /**
   * Starts the clock on one command: `expire` is called once `timeoutMillis` have passed, unless the returned
   * `untrack` is called first.
   */
  readonly track: (expire: () => void) => () => void
  /**
   * Runs `command` in a fiber of its own; if it has not completed `timeoutMillis` after it started, it is interrupted
   * and the result is a failure with `onTimeout()`. For commands that are Effects; a Promise can use `track` alone.
   */
  readonly bound: <A, E, E2>(command: Effect.Effect<A, E>, onTimeout: () => E2) => Effect.Effect<A, E | E2>
}

interface InFlight {
  readonly deadline: number
  readonly expire: () => void
}

/** Makes a watchdog for commands bounded by `timeoutMillis`. */
export const make = (timeoutMillis: number): CommandWatchdog => {
  const inFlight = new Set<InFlight>()
  let timer: ReturnType<typeof setTimeout> | undefined

  /** Referenced or not, as there are commands in flight (Node's timers; elsewhere timers have no such switch). */
  const holdProcess = (hold: boolean) => {
    if (typeof timer !== "object" || typeof timer.ref !== "function") return
    if (hold) timer.ref()
    else timer.unref()
  }

  const arm = (delay: number) => {
    timer = setTimeout(fire, Math.max(1, Math.ceil(delay)))
  }

  function fire() {
    timer = undefined
    const now = performance.now()
    for (const entry of inFlight) {
      if (entry.deadline > now) return arm(entry.deadline - now)
      inFlight.delete(entry)
      entry.expire()
    }
  }

  const track = (expire: () => void) => {
    const entry: InFlight = { deadline: performance.now() + timeoutMillis, expire }
    if (inFlight.size === 0 && timer !== undefined) holdProcess(true)
    inFlight.add(entry)
    if (timer === undefined) arm(timeoutMillis)
    return () => {
      // Left armed when the last command completes (re-arming per command costs more than a late, empty fire).
      if (inFlight.delete(entry) && inFlight.size === 0) holdProcess(false)
    }
  }

  const bound = <A, E, E2>(command: Effect.Effect<A, E>, onTimeout: () => E2): Effect.Effect<A, E | E2> =>
    Effect.withFiber((parent) =>
      Effect.callback<A, E | E2>((resume) => {
        const child = Effect.runForkWith(parent.context)(command)
        const done = child.pollUnsafe()
        if (done !== undefined) return resume(done)
        const untrack = track(() => {
          // Fail first: interrupting the child completes it at once, and its observer would resume with that.
          resume(Effect.fail(onTimeout()))
          child.interruptUnsafe()
        })
        child.addObserver((exit) => {
          untrack()
          resume(exit)
        })
        return Effect.sync(() => {
          untrack()
          child.interruptUnsafe()
        })
      })
    )

  return { track, bound }
}
