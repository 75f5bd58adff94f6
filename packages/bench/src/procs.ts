/**
 * Every child process the bench starts (the redis-server, the worker processes) is registered here and killed when
 * the bench ends, fails, or is stopped with Ctrl-C.
 *
 * @since 0.1.0
 */
import type { ChildProcess } from "node:child_process"

const children = new Set<ChildProcess>()

const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null

/**
 * Registers a child process to be killed by `killAll`; it leaves the registry when it exits.
 *
 * @category processes
 * @since 0.1.0
 */
export const track = <C extends ChildProcess>(child: C): C => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

/**
 * Sends SIGKILL to every registered child that is still running (synchronous, so it also works in an `exit`
 * handler).
 *
 * @category processes
 * @since 0.1.0
 */
export const killAll = (): void => {
  for (const child of children) if (alive(child)) child.kill("SIGKILL")
  children.clear()
}

/**
 * Stops one child: SIGTERM, then SIGKILL after `graceMillis`; resolves once it has exited.
 *
 * @category processes
 * @since 0.1.0
 */
export const stop = (child: ChildProcess, graceMillis = 2000): Promise<void> =>
  new Promise((resolve) => {
    if (!alive(child)) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMillis)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

/**
 * Kills every registered child when the process exits, on SIGINT/SIGTERM/SIGHUP (then exits with 128 + signal), and
 * after a watchdog of `watchdogMillis`, so that no redis-server or worker outlives a bench that hangs or is stopped.
 *
 * @category processes
 * @since 0.1.0
 */
export const installCleanup = (watchdogMillis: number): void => {
  process.on("exit", killAll)
  const signals = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const
  for (const [signal, number] of Object.entries(signals)) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping the redis-server and the workers`)
      killAll()
      process.exit(128 + number)
    })
  }
  const watchdog = setTimeout(() => {
    console.error(`\nbench: still running after ${Math.round(watchdogMillis / 1000)} s, giving up`)
    killAll()
    process.exit(1)
  }, watchdogMillis)
  watchdog.unref()
}
