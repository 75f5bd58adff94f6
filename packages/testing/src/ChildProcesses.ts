/**
 * Small helpers for tests that run child processes (a redis-server, worker processes): whether one has exited, and
 * an effect that completes when it does, without missing an exit that already happened.
 *
 * @since 0.1.0
 */
import type { ChildProcess } from "node:child_process"
import { Effect } from "effect"

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
