/**
 * The bench's side of a worker process: fork `worker.ts` (with `--expose-gc`), send requests, await answers within a
 * time bound, and stop it.
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { bounded, messageOf } from "./clock.ts"
import { stop, track } from "./procs.ts"
import type { FromWorker, ToWorker } from "./protocol.ts"
import type { Metrics } from "./results.ts"

const workerPath = fileURLToPath(new URL("./worker.ts", import.meta.url))

/**
 * A running worker process.
 * - `request(message, timeoutMs)`: sends a request and resolves with the next answer; rejects on `failed`, on exit,
 *   or after `timeoutMs`.
 * - `close()`: asks it to exit, and kills it if it does not.
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkerProcess {
  readonly request: (message: ToWorker, timeoutMs: number) => Promise<FromWorker>
  readonly close: () => Promise<void>
}

/**
 * Forks a worker process and waits (at most 30 s) for its `hello`. It is registered for `killAll`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const spawnWorker = async (): Promise<WorkerProcess> => {
  const child: ChildProcess = track(
    fork(workerPath, [], { execArgv: ["--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] })
  )
  const inbox: Array<FromWorker> = []
  const waiting: Array<{ resolve: (message: FromWorker) => void; reject: (error: Error) => void }> = []
  child.on("message", (message: FromWorker) => {
    const waiter = waiting.shift()
    if (waiter === undefined) inbox.push(message)
    else if (message.type === "failed") waiter.reject(new Error(message.error))
    else waiter.resolve(message)
  })
  child.once("exit", (code, signal) => {
    for (const waiter of waiting.splice(0)) waiter.reject(new Error(`worker exited (${code ?? signal})`))
  })
  const next = (timeoutMs: number, what: string) => {
    const queued = inbox.shift()
    if (queued !== undefined) {
      return queued.type === "failed" ? Promise.reject(new Error(queued.error)) : Promise.resolve(queued)
    }
    if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error("worker has exited"))
    return bounded(new Promise<FromWorker>((resolve, reject) => waiting.push({ resolve, reject })), timeoutMs, what)
  }
  try {
    await next(30_000, "a worker's start")
  } catch (error) {
    await stop(child)
    throw error
  }
  return {
    request: (message, timeoutMs) => {
      child.send(message)
      return next(timeoutMs, `the worker's answer to ${message.type}`)
    },
    close: async () => {
      if (child.connected) child.send({ type: "exit" } satisfies ToWorker)
      await stop(child, 5_000)
    }
  }
}

/**
 * One measurement in a fresh worker process: starts it, sends `message`, expects `measured` metrics within
 * `timeoutMs`, and stops it whatever happens. A failure is handed to `onError`, and the result is then `undefined`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const measureInFreshWorker = async (
  message: ToWorker,
  timeoutMs: number,
  onError: (message: string) => void
): Promise<Metrics | undefined> => {
  let worker: WorkerProcess | undefined
  try {
    worker = await spawnWorker()
    const answer = await worker.request(message, timeoutMs)
    if (answer.type !== "measured") throw new Error(`unexpected answer ${answer.type}`)
    return answer.metrics
  } catch (error) {
    onError(messageOf(error))
    return undefined
  } finally {
    await worker?.close()
  }
}
