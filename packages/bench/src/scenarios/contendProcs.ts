/**
 * `contend-procs`: the contention of `contend`, with the workers spread over several processes (each with its own
 * client). Overlaps are detected in Redis: each hold `INCR`s a counter key on entry and `DECR`s it on exit, and an
 * `INCR` that returns more than 1 is an overlap. Hand-off gaps compare timestamps of the shared monotonic clock.
 *
 * @since 0.1.0
 */
import { messageOf, now } from "../clock.ts"
import { plural } from "../format.ts"
import { progress } from "../live.ts"
import type { Admin } from "../redis.ts"
import { collector, rotate, type ScenarioResult } from "../results.ts"
import type { Spec } from "../subjects/Subject.ts"
import { spawnWorker, type WorkerProcess } from "../workerProcess.ts"
import { type ContendSettings, contendMetrics } from "./contend.ts"
import type { ContendOptions, HoldEvent, WorkerReport } from "./contention.ts"

/**
 * Settings of `contend-procs`: those of `contend`, with `processes` × `workersPerProcess` workers.
 *
 * @category models
 * @since 0.1.0
 */
export interface ContendProcsSettings extends Omit<ContendSettings, "workers"> {
  readonly processes: number
  readonly workersPerProcess: number
}

const merge = (reports: ReadonlyArray<WorkerReport>): WorkerReport => ({
  events: reports.flatMap((r): ReadonlyArray<HoldEvent> => r.events),
  overlaps: reports.reduce((n, r) => n + r.overlaps, 0),
  failures: reports.reduce((n, r) => n + r.failures, 0),
  lastError: reports.find((r) => r.lastError !== undefined)?.lastError,
  stragglers: reports.reduce((n, r) => n + r.stragglers, 0)
})

/**
 * Runs `contend-procs` with leases of `ttlMillis`: per round, `processes` worker processes are started and run
 * each subject in turn (set up, a warm-up run, the measured run, tear down). A subject that fails leaves the
 * processes in an unknown state, so they are replaced.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runContendProcsScenario = async (
  specs: ReadonlyArray<Spec>,
  url: string,
  admin: Admin,
  settings: ContendProcsSettings,
  ttlMillis: number
): Promise<ScenarioResult> => {
  const results = collector(specs, "contend-procs")
  const runnable = specs.filter((spec) => spec.unsupported["contend-procs"] === undefined)
  const workerIds = Array.from({ length: settings.processes * settings.workersPerProcess }, (_, i) => i)
  const spawnAll = () => Promise.all(Array.from({ length: settings.processes }, spawnWorker))
  const closeAll = (procs: ReadonlyArray<WorkerProcess>) => Promise.all(procs.map((p) => p.close()))
  const run = async (procs: ReadonlyArray<WorkerProcess>, key: string, durationMs: number) => {
    const startAt = now() + 100
    const answers = await Promise.all(
      procs.map((p, i) => {
        const options: ContendOptions = {
          key,
          workerIds: workerIds.slice(i * settings.workersPerProcess, (i + 1) * settings.workersPerProcess),
          startAt,
          durationMs,
          holdMs: settings.holdMs,
          graceMs: settings.graceMs
        }
        return p.request(
          { type: "contend-go", options, counterKey: `${key}:inside` },
          durationMs + settings.graceMs + 15_000
        )
      })
    )
    const report = merge(
      answers.map((answer) => {
        if (answer.type !== "contended") throw new Error(`unexpected answer ${answer.type}`)
        return answer.report
      })
    )
    return { report, metrics: contendMetrics(report, workerIds, startAt, durationMs) }
  }
  for (let round = 0; round < settings.rounds; round++) {
    await admin.flushAll()
    let procs: ReadonlyArray<WorkerProcess> | undefined
    try {
      for (const spec of rotate(runnable, round)) {
        try {
          procs ??= await spawnAll()
          const current = procs
          await Promise.all(
            current.map((p) => p.request({ type: "contend-setup", subject: spec.id, url, ttlMillis }, 20_000))
          )
          await run(current, `bench:contend-procs:warmup:${round}:${spec.id}`, settings.warmupMs)
          const { report, metrics } = await run(current, `bench:contend-procs:${round}:${spec.id}`, settings.durationMs)
          await Promise.all(current.map((p) => p.request({ type: "contend-teardown" }, 15_000)))
          results.add(spec.id, metrics)
          if (report.lastError !== undefined)
            results.error(spec.id, `${report.failures} failed waits: ${report.lastError}`)
          if (report.stragglers > 0)
            results.error(spec.id, `${report.stragglers} workers still waiting after the grace period`)
          progress(
            `contend-procs round ${round + 1}/${settings.rounds} ${spec.name}: ` +
              `${Math.round(metrics.ownerChangesPerSec!)} owner changes/s, gap p99 ${metrics.gapP99!.toFixed(2)} ms`
          )
        } catch (error) {
          results.error(spec.id, messageOf(error))
          if (procs !== undefined) await closeAll(procs)
          procs = undefined
        }
      }
    } finally {
      if (procs !== undefined) await closeAll(procs)
    }
  }
  return {
    id: "contend-procs",
    setup:
      `${settings.processes} processes × ${settings.workersPerProcess} workers, one client per process, one key, ` +
      `${settings.holdMs} ms of work per hold plus the INCR/DECR of the overlap counter, ` +
      `${plural(settings.rounds, "round")} of ${settings.durationMs / 1000} s per library`,
    rows: results.rows()
  }
}
