/**
 * Small helpers for tests that run child processes (a redis-server, worker processes): whether one has exited, and
 * an effect that completes when it does, without missing an exit that already happened.
 *
 * @since 0.1.0
 */
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import { Effect, Schedule } from "effect"

/**
 * Whether the child has exited (by code or by signal).
 *
 * @category guards
 * @since 0.1.0
 */
export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

/**
 * Completes when the child has exited, at once if it already has; interrupting it removes its listener.
 *
 * @category utils
 * @since 0.1.0
 */
export const awaitExit = (child: ChildProcess): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (hasExited(child)) return resume(Effect.void)
    const onExit = () => resume(Effect.void)
    child.once("exit", onExit)
    return Effect.sync(() => {
      child.off("exit", onExit)
    })
  })

/**
 * The scheduler state of a process as Linux reports it (`R` running, `S` sleeping, `T` stopped, ...), or
 * `undefined` where `/proc` is not available or the process is gone.
 *
 * @category getters
 * @since 0.1.0
 */
export const processState = (pid: number): string | undefined => {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0]
  } catch {
    return undefined
  }
}

/**
 * Completes once a process that was sent `SIGSTOP` is stopped: the signal is delivered asynchronously, and a server
 * on another core may answer a few more commands before it stops. Polls `/proc` every millisecond for at most
 * `maxMillis`; where `/proc` is not available it completes at once.
 *
 * @category constructors
 * @since 0.1.0
 */
export const awaitStopped = (pid: number, maxMillis = 1_000): Effect.Effect<void> =>
  Effect.suspend(() => {
    const state = processState(pid)
    return state === undefined || state === "T" || state === "t" ? Effect.void : Effect.fail("running" as const)
  }).pipe(Effect.retry({ schedule: Schedule.spaced("1 millis"), times: maxMillis }), Effect.ignore)
