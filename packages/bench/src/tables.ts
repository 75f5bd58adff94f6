/**
 * The markdown tables of the report: one per scenario, each figure the median over rounds (with its range where it
 * is the scenario's main figure) and its ratio to the baseline measured in the same run; footnotes for the subjects
 * that could not run a scenario or met errors.
 *
 * @since 0.1.0
 */
import { type Format, formatValue } from "./format.ts"
import type { Metrics, Row, ScenarioResult } from "./results.ts"
import { figure } from "./stats.ts"
import { baselineId, holdBaselineId, specOf } from "./subjects/index.ts"
import type { ScenarioId } from "./subjects/Subject.ts"

/**
 * One column: the metric, its heading and format, whether its range over rounds is shown, whether its ratio to the
 * baseline is shown.
 *
 * @category models
 * @since 0.1.0
 */
export interface Column {
  readonly key: string
  readonly label: string
  readonly format: Format
  readonly range?: boolean
  readonly ratio?: boolean
}

const contentionColumns: ReadonlyArray<Column> = [
  { key: "acquisitionsPerSec", label: "acquisitions/s", format: "rate", ratio: true },
  { key: "ownerChangesPerSec", label: "owner changes/s", format: "rate", range: true, ratio: true },
  { key: "gapP50", label: "gap p50 ms", format: "ms", ratio: true },
  { key: "gapP99", label: "gap p99 ms", format: "ms", range: true, ratio: true },
  { key: "minPerWorker", label: "min/worker", format: "count" },
  { key: "maxPerWorker", label: "max/worker", format: "count" },
  { key: "jain", label: "Jain", format: "index", range: true },
  { key: "overlaps", label: "overlaps", format: "count" },
  { key: "failures", label: "gave up", format: "count" }
]

/**
 * The columns of each scenario, and the id of its baseline.
 *
 * @category tables
 * @since 0.1.0
 */
export const layouts: Record<ScenarioId, { readonly baseline: string; readonly columns: ReadonlyArray<Column> }> = {
  seq: {
    baseline: baselineId,
    columns: [
      { key: "cyclesPerSec", label: "cycles/s", format: "rate", range: true, ratio: true },
      { key: "p50", label: "p50 ms", format: "ms", ratio: true },
      { key: "p99", label: "p99 ms", format: "ms", ratio: true }
    ]
  },
  par64: {
    baseline: baselineId,
    columns: [
      { key: "cyclesPerSec", label: "cycles/s", format: "rate", range: true, ratio: true },
      { key: "p50", label: "p50 ms", format: "ms", ratio: true },
      { key: "p99", label: "p99 ms", format: "ms", ratio: true }
    ]
  },
  contend: { baseline: baselineId, columns: contentionColumns },
  "contend-procs": { baseline: baselineId, columns: contentionColumns },
  renew: {
    baseline: holdBaselineId,
    columns: [
      { key: "owned", label: "still owned", format: "count" },
      { key: "commands", label: "renew commands", format: "count", range: true, ratio: true },
      { key: "expected", label: "TTL/3 intervals", format: "count" },
      { key: "perExpected", label: "per TTL/3", format: "index", range: true }
    ]
  },
  "hold-many": {
    baseline: holdBaselineId,
    columns: [
      { key: "leases", label: "leases", format: "count" },
      { key: "lost", label: "lost", format: "count" },
      { key: "cpuSeconds", label: "CPU s", format: "seconds", ratio: true },
      { key: "cpuMicrosPerLeaseSecond", label: "CPU µs per lease·s", format: "micros", range: true, ratio: true },
      { key: "rssPerLease", label: "RSS per lease", format: "bytes", range: true, ratio: true },
      { key: "heapPerLease", label: "heap per lease", format: "bytes", ratio: true },
      { key: "rssMB", label: "RSS MB", format: "mb" },
      { key: "renewPerSec", label: "renew cmds/s", format: "rate", ratio: true },
      { key: "acquireMs", label: "acquire all ms", format: "rate" }
    ]
  },
  mem: {
    baseline: baselineId,
    columns: [
      { key: "cycles", label: "cycles", format: "count" },
      { key: "cyclesPerSec", label: "cycles/s", format: "rate", ratio: true },
      { key: "heapBeforeMB", label: "heap before MB", format: "mb" },
      { key: "heapMiddleMB", label: "heap halfway MB", format: "mb" },
      { key: "heapAfterMB", label: "heap after MB", format: "mb" },
      { key: "heapGrowthPerCycle", label: "growth per cycle, 2nd half", format: "bytes" },
      { key: "rssBeforeMB", label: "RSS before MB", format: "mb" },
      { key: "rssAfterMB", label: "RSS after MB", format: "mb", ratio: true },
      { key: "timersBefore", label: "timers before", format: "count" },
      { key: "timersAfter", label: "timers after", format: "count" }
    ]
  }
}

/**
 * The per-round values of one metric of a row; empty when the row was not measured.
 *
 * @category tables
 * @since 0.1.0
 */
export const valuesOf = (row: Row | undefined, key: string): ReadonlyArray<number> =>
  row?.outcome._tag === "measured" ? row.outcome.rounds.map((round: Metrics) => round[key] ?? Number.NaN) : []

/**
 * The median over rounds of one metric of a row (`NaN` when not measured).
 *
 * @category tables
 * @since 0.1.0
 */
export const medianOf = (row: Row | undefined, key: string): number => figure(valuesOf(row, key)).median

/**
 * The row of a subject in a scenario.
 *
 * @category tables
 * @since 0.1.0
 */
export const rowOf = (result: ScenarioResult | undefined, id: string): Row | undefined =>
  result?.rows.find((row) => row.id === id)

/**
 * Renders one scenario as a markdown table with its footnotes. Baselines that do not apply to the scenario are left
 * out; libraries that cannot run it are listed as n/a with the reason.
 *
 * @category tables
 * @since 0.1.0
 */
export const renderTable = (result: ScenarioResult): string => {
  const layout = layouts[result.id]
  const baseline = rowOf(result, layout.baseline)
  const notes: Array<string> = []
  const note = (text: string) => {
    const existing = notes.indexOf(text)
    if (existing >= 0) return `[${existing + 1}]`
    notes.push(text)
    return `[${notes.length}]`
  }
  const head = `| library | ${layout.columns.map((c) => c.label).join(" | ")} |`
  const rule = `|---|${layout.columns.map(() => "---:").join("|")}|`
  const shown = result.rows.filter((row) => row.role !== "baseline" || row.outcome._tag !== "na")
  const lines = shown.map((row) => {
    const name = row.role === "leasehold" ? `**${row.name}**` : row.name
    const outcome = row.outcome
    if (outcome._tag === "na")
      return `| ${name} | n/a ${note(outcome.reason)} |${" |".repeat(layout.columns.length - 1)}`
    if (outcome._tag === "failed")
      return `| ${name} | failed ${note(outcome.error)} |${" |".repeat(layout.columns.length - 1)}`
    const marks = [...new Set(outcome.errors)].slice(0, 3).map(note).join("")
    const cells = layout.columns.map((column) => {
      const f = figure(valuesOf(row, column.key))
      let cell = formatValue(f.median, column.format)
      if (column.range === true && outcome.rounds.length > 1 && Number.isFinite(f.min)) {
        cell += ` [${formatValue(f.min, column.format)}–${formatValue(f.max, column.format)}]`
      }
      const base = medianOf(baseline, column.key)
      if (column.ratio === true && row.id !== layout.baseline && Number.isFinite(base) && base !== 0) {
        cell += ` (${formatValue(f.median / base, "ratio")})`
      }
      return cell
    })
    return `| ${name}${marks === "" ? "" : ` ${marks}`} | ${cells.join(" | ")} |`
  })
  const baselineName = specOf(layout.baseline).name
  const legend =
    `Median over rounds, [range] where shown, (×) = ratio to ${baselineName} in the same run.` +
    (notes.length > 0 ? `\n\n${notes.map((text, i) => `[${i + 1}] ${text}`).join("  \n")}` : "")
  return [head, rule, ...lines, "", legend].join("\n")
}
