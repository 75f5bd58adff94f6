/**
 * Worker processes for the chaos tests and the soak: `spawn` starts `worker.ts` with Node (type stripping), reads
 * its JSON lines, and kills it when the scope closes (resumed first if it was stopped, then `SIGKILL`).
 */
import { type ChildProcess, spawn as spawnProcess } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { ChildProcesses } from "@leasehold/testing"
import { Deferred, Effect, type Scope } from "effect"
import type { Go, WorkerConfig, WorkerLine } from "./protocol.ts"

/** The worker script. */
export const workerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "worker.ts")

export interface WorkerProcess {
  readonly id: string
  readonly pid: number
  /** Every line so far. */
  readonly lines: () => ReadonlyArray<WorkerLine>
  /** The first line (seen or to come) that matches; dies with the worker's stderr if it exits first. */
  readonly waitFor: (predicate: (line: WorkerLine) => boolean) => Effect.Effect<WorkerLine>
  /** Starts the work, until `untilEpochMillis`. */
  readonly go: (go: Go) => Effect.Effect<void>
  /** `SIGSTOP` / `SIGCONT`: the whole process stands still, as in a long GC pause or a suspended VM. */
  readonly stop: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  /** Completes with the exit code when the process has exited. */
  readonly exited: Effect.Effect<number | null>
  readonly stderr: () => string
}

const signal = (child: ChildProcess, name: NodeJS.Signals) =>
  Effect.sync(() => {
    if (!ChildProcesses.hasExited(child)) child.kill(name)
  })

/** Starts a worker process with `config`, for the life of the scope. */
export const spawn = (config: WorkerConfig): Effect.Effect<WorkerProcess, never, Scope.Scope> =>
  Effect.gen(function* () {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawnProcess(process.execPath, [workerScript, JSON.stringify(config)], {
          stdio: ["pipe", "pipe", "pipe"]
        })
      ),
      (child) =>
        Effect.gen(function* () {
          if (ChildProcesses.hasExited(child)) return
          yield* signal(child, "SIGCONT")
          yield* signal(child, "SIGKILL")
          yield* ChildProcesses.awaitExit(child).pipe(Effect.timeoutOption("5 seconds"))
        })
    )
    const exitCode = Deferred.makeUnsafe<number | null>()
    // `close` comes after the exit and after stdout has been read to its end.
    child.on("close", (code) => Deferred.doneUnsafe(exitCode, Effect.succeed(code)))
    child.on("error", () => Deferred.doneUnsafe(exitCode, Effect.succeed(null)))
    child.stdin?.on("error", () => {})
    let stderr = ""
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-16_384)
    })
    const seen: Array<WorkerLine> = []
    const waiters = new Set<{
      readonly predicate: (line: WorkerLine) => boolean
      readonly found: Deferred.Deferred<WorkerLine>
    }>()
    readline.createInterface({ input: child.stdout! }).on("line", (text) => {
      let line: WorkerLine
      try {
        line = JSON.parse(text) as WorkerLine
      } catch {
        stderr = `${stderr}\n[stdout] ${text}`.slice(-16_384)
        return
      }
      seen.push(line)
      for (const waiter of waiters) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter)
          Deferred.doneUnsafe(waiter.found, Effect.succeed(line))
        }
      }
    })
    const exited = Deferred.await(exitCode)
    const waitFor = (predicate: (line: WorkerLine) => boolean) =>
      Effect.suspend(() => {
        const found = seen.find(predicate)
        if (found !== undefined) return Effect.succeed(found)
        const waiter = { predicate, found: Deferred.makeUnsafe<WorkerLine>() }
        waiters.add(waiter)
        return Effect.raceFirst(
          Deferred.await(waiter.found),
          Effect.flatMap(exited, (code) =>
            Effect.suspend(() => {
              const late = seen.find(predicate)
              return late !== undefined
                ? Effect.succeed(late)
                : Effect.die(new Error(`worker ${config.id} exited (${code}) first. stderr:\n${stderr}`))
            })
          )
        ).pipe(Effect.ensuring(Effect.sync(() => waiters.delete(waiter))))
      })
    return {
      id: config.id,
      pid: child.pid!,
      lines: () => seen,
      waitFor,
      go: (go) =>
        Effect.sync(() => {
          child.stdin?.write(`${JSON.stringify(go)}\n`)
        }),
      stop: signal(child, "SIGSTOP"),
      resume: signal(child, "SIGCONT"),
      exited,
      stderr: () => stderr
    }
  })
