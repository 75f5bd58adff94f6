/**
 * The targets the issue states, checked against the measurements: PASS, MISS, or NONE when a figure is missing.
 * They are reported, never tuned for.
 *
 * @since 0.1.0
 */
import { formatValue } from "./format.ts"
import type { ScenarioResult } from "./results.ts"
import { figure } from "./stats.ts"
import type { ScenarioId } from "./subjects/Subject.ts"
import { medianOf, rowOf, valuesOf } from "./tables.ts"

/**
 * One checked target: the scenario, the verdict, a sentence with the figures and the margin, and whether it is one
 * of the targets or a check of the bench's own (the `mem` growth check).
 *
 * @category models
 * @since 0.1.0
 */
export interface Verdict {
  readonly scenario: ScenarioId
  readonly status: "PASS" | "MISS" | "NONE"
  readonly text: string
  readonly kind: "target" | "check"
}

const verdict = (scenario: ScenarioId, pass: boolean | undefined, text: string): Verdict => ({
  scenario,
  status: pass === undefined ? "NONE" : pass ? "PASS" : "MISS",
  text,
  kind: "target"
})

const known = (...values: ReadonlyArray<number>) => values.every((v) => Number.isFinite(v))

const ratioText = (value: number) => formatValue(value, "ratio")

const throughputTargets = (result: ScenarioResult): ReadonlyArray<Verdict> => {
  const id = result.id
  const leasehold = medianOf(rowOf(result, "leasehold"), "cyclesPerSec")
  const peers = result.rows
    .filter((row) => row.role === "peer")
    .map((row) => ({ name: row.name, value: medianOf(row, "cyclesPerSec") }))
    .filter((peer) => Number.isFinite(peer.value))
    .sort((a, b) => b.value - a.value)
  const best = peers[0]
  const raw = medianOf(rowOf(result, "raw-node-redis"), "cyclesPerSec")
  const rate = (v: number) => `${formatValue(v, "rate")} cycles/s`
  return [
    best === undefined || !known(leasehold)
      ? verdict(id, undefined, "leasehold ≥ the best peer's cycles/s: not measured")
      : verdict(
          id,
          leasehold >= best.value,
          `leasehold ≥ the best peer's cycles/s: ${rate(leasehold)} vs ${best.name} ${rate(best.value)} ` +
            `(${ratioText(leasehold / best.value)}, target ≥ 1.00×)`
        ),
    !known(leasehold, raw)
      ? verdict(id, undefined, "leasehold ≥ 0.9× raw node-redis: not measured")
      : verdict(
          id,
          leasehold >= 0.9 * raw,
          `leasehold ≥ 0.9× raw node-redis: ${rate(leasehold)} vs ${rate(raw)} ` +
            `(${ratioText(leasehold / raw)}, target ≥ 0.90×)`
        )
  ]
}

const contentionTargets = (result: ScenarioResult): ReadonlyArray<Verdict> => {
  const id = result.id
  const row = rowOf(result, "leasehold")
  const changes = medianOf(row, "ownerChangesPerSec")
  const redlock = Math.max(
    medianOf(rowOf(result, "redlock"), "ownerChangesPerSec"),
    medianOf(rowOf(result, "redlock-using"), "ownerChangesPerSec")
  )
  const semaphore = medianOf(rowOf(result, "redis-semaphore"), "ownerChangesPerSec")
  const gap = medianOf(row, "gapP99")
  const jain = figure(valuesOf(row, "jain"))
  const overlaps = valuesOf(row, "overlaps").reduce((a, b) => a + b, 0)
  const timeOverlaps = valuesOf(row, "timeOverlaps").reduce((a, b) => a + b, 0)
  const changesText = (v: number) => `${formatValue(v, "rate")}/s`
  const overlapping = result.rows
    .filter((r) => r.id !== "leasehold" && valuesOf(r, "overlaps").some((n) => n > 0))
    .map((r) => `${r.name} (${valuesOf(r, "overlaps").reduce((a, b) => a + b, 0)})`)
  return [
    !known(changes, redlock)
      ? verdict(id, undefined, "owner changes/s ≥ 5× node-redlock's defaults: not measured")
      : verdict(
          id,
          changes >= 5 * redlock,
          `owner changes/s ≥ 5× node-redlock's defaults (the better of acquire/release and using()): ` +
            `${changesText(changes)} vs ${changesText(redlock)} (${ratioText(changes / redlock)}, target ≥ 5.00×)`
        ),
    !known(changes, semaphore)
      ? verdict(id, undefined, "owner changes/s ≥ 2× redis-semaphore: not measured")
      : verdict(
          id,
          changes >= 2 * semaphore,
          `owner changes/s ≥ 2× redis-semaphore: ${changesText(changes)} vs ${changesText(semaphore)} ` +
            `(${ratioText(changes / semaphore)}, target ≥ 2.00×)`
        ),
    !known(gap)
      ? verdict(id, undefined, "different-worker gap p99 < 2 ms: not measured")
      : verdict(id, gap < 2, `different-worker gap p99 < 2 ms: ${formatValue(gap, "ms")} ms (median over rounds)`),
    !known(jain.median)
      ? verdict(id, undefined, "Jain's index ≥ 0.95: not measured")
      : verdict(
          id,
          jain.median >= 0.95,
          `Jain's index ≥ 0.95: ${formatValue(jain.median, "index")} ` +
            `(rounds ${formatValue(jain.min, "index")}–${formatValue(jain.max, "index")})`
        ),
    row?.outcome._tag !== "measured"
      ? verdict(id, undefined, "zero overlaps: not measured")
      : verdict(
          id,
          overlaps === 0 && timeOverlaps === 0,
          `zero overlaps: ${overlaps} seen by the ${id === "contend" ? "in-process counter" : "Redis counter"}, ` +
            `${timeOverlaps} by the timestamps` +
            (overlapping.length > 0 ? `; other libraries with overlaps: ${overlapping.join(", ")}` : "")
        )
  ]
}

const renewTargets = (result: ScenarioResult): ReadonlyArray<Verdict> => {
  const row = rowOf(result, "leasehold")
  if (row?.outcome._tag !== "measured")
    return [verdict("renew", undefined, "one renew command per TTL/3 per lease: not measured")]
  const rounds = row.outcome.rounds
  const exact = rounds.every((r) => {
    const extra = (r.commands ?? 0) - (r.expected ?? 0)
    return extra === 0 || extra === -1
  })
  const owned = rounds.every((r) => r.owned === 1)
  const counts = rounds.map((r) => `${r.commands}/${r.expected}`).join(", ")
  return [
    verdict(
      "renew",
      exact && owned,
      `one renew command per TTL/3 per lease, still owned at the end: commands/intervals per round ${counts} ` +
        `(one fewer accepted for timer lateness at the window's edge, none extra), ` +
        `${owned ? "owned in every round" : "NOT owned in every round"}`
    )
  ]
}

const holdManyTargets = (result: ScenarioResult): ReadonlyArray<Verdict> => {
  const row = rowOf(result, "leasehold")
  const timer = rowOf(result, "timer-per-lock")
  const lost = valuesOf(row, "lost").reduce((a, b) => a + b, 0)
  const cpu = medianOf(row, "cpuMicrosPerLeaseSecond")
  const timerCpu = medianOf(timer, "cpuMicrosPerLeaseSecond")
  const rss = medianOf(row, "rssPerLease")
  const timerRss = medianOf(timer, "rssPerLease")
  const heap = medianOf(row, "heapPerLease")
  const timerHeap = medianOf(timer, "heapPerLease")
  const bytes = (v: number) => formatValue(v, "bytes")
  return [
    row?.outcome._tag !== "measured"
      ? verdict("hold-many", undefined, "no lease lost: not measured")
      : verdict("hold-many", lost === 0, `no lease lost: ${lost} lost`),
    !known(cpu, timerCpu)
      ? verdict("hold-many", undefined, "CPU per held lease lower than one-timer-per-lock: not measured")
      : verdict(
          "hold-many",
          cpu < timerCpu,
          `CPU per held lease lower than one-timer-per-lock: ${formatValue(cpu, "micros")} vs ` +
            `${formatValue(timerCpu, "micros")} µs per lease·s (${ratioText(cpu / timerCpu)}, target < 1.00×)`
        ),
    !known(rss, timerRss)
      ? verdict("hold-many", undefined, "memory per held lease lower than one-timer-per-lock: not measured")
      : verdict(
          "hold-many",
          rss < timerRss,
          `memory per held lease lower than one-timer-per-lock: RSS ${bytes(rss)} vs ${bytes(timerRss)} ` +
            `(${ratioText(rss / timerRss)}, target < 1.00×); heap ${bytes(heap)} vs ${bytes(timerHeap)}`
        )
  ]
}

const memChecks = (result: ScenarioResult): ReadonlyArray<Verdict> => {
  const row = rowOf(result, "leasehold")
  const growth = medianOf(row, "heapGrowthPerCycle")
  const before = medianOf(row, "timersBefore")
  const after = medianOf(row, "timersAfter")
  if (!known(growth, before, after)) return [{ ...verdict("mem", undefined, "no growth: not measured"), kind: "check" }]
  return [
    {
      ...verdict(
        "mem",
        growth < 10 && after <= before,
        `no growth (under 10 B of heap per cycle over the second half, no timer left pending): ` +
          `${formatValue(growth, "bytes")} per cycle, pending timers ${before} before and ${after} after`
      ),
      kind: "check"
    }
  ]
}

const checks: Record<ScenarioId, (result: ScenarioResult) => ReadonlyArray<Verdict>> = {
  seq: throughputTargets,
  par64: throughputTargets,
  contend: contentionTargets,
  "contend-procs": contentionTargets,
  renew: renewTargets,
  "hold-many": holdManyTargets,
  mem: memChecks
}

/**
 * Checks every target against the scenarios that were run.
 *
 * @category targets
 * @since 0.1.0
 */
export const checkTargets = (results: ReadonlyArray<ScenarioResult>): ReadonlyArray<Verdict> =>
  results.flatMap((result) => checks[result.id](result))
