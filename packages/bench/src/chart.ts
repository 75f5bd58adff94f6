/**
 * An SVG bar chart of the main figures, written without dependencies: one panel per figure, one horizontal bar per
 * library (the median over rounds) with a whisker for the range.
 *
 * @since 0.1.0
 */
import { type Format, formatValue } from "./format.ts"
import type { ScenarioResult } from "./results.ts"
import { figure } from "./stats.ts"
import type { ScenarioId } from "./subjects/Subject.ts"
import { rowOf, valuesOf } from "./tables.ts"

/**
 * One bar: the library, its role (for the colour), the median and the range.
 *
 * @category models
 * @since 0.1.0
 */
export interface Bar {
  readonly name: string
  readonly role: "leasehold" | "peer" | "baseline"
  readonly median: number
  readonly min: number
  readonly max: number
}

/**
 * One panel of the chart.
 *
 * @category models
 * @since 0.1.0
 */
export interface Panel {
  readonly title: string
  readonly format: Format
  readonly bars: ReadonlyArray<Bar>
}

const figures: ReadonlyArray<{ scenario: ScenarioId; key: string; title: string; format: Format }> = [
  {
    scenario: "seq",
    key: "cyclesPerSec",
    title: "seq: acquire+release cycles/s, one worker (higher is better)",
    format: "rate"
  },
  {
    scenario: "par64",
    key: "cyclesPerSec",
    title: "par64: cycles/s, 64 concurrent workers (higher is better)",
    format: "rate"
  },
  {
    scenario: "contend",
    key: "ownerChangesPerSec",
    title: "contend: owner changes/s, 8 workers, one key (higher is better)",
    format: "rate"
  },
  { scenario: "contend", key: "gapP99", title: "contend: hand-off gap p99, ms (lower is better)", format: "ms" },
  {
    scenario: "contend-procs",
    key: "ownerChangesPerSec",
    title: "contend-procs: owner changes/s, 4 processes × 2 workers (higher is better)",
    format: "rate"
  },
  {
    scenario: "hold-many",
    key: "cpuMicrosPerLeaseSecond",
    title: "hold-many: CPU µs per held lease per second (lower is better)",
    format: "micros"
  },
  {
    scenario: "hold-many",
    key: "rssPerLease",
    title: "hold-many: RSS per held lease (lower is better)",
    format: "bytes"
  }
]

/**
 * The panels for the scenarios that were run: one per main figure, with the libraries that measured it.
 *
 * @category chart
 * @since 0.1.0
 */
export const panelsOf = (results: ReadonlyArray<ScenarioResult>): ReadonlyArray<Panel> =>
  figures.flatMap((spec) => {
    const result = results.find((r) => r.id === spec.scenario)
    if (result === undefined) return []
    const bars = result.rows.flatMap((row): ReadonlyArray<Bar> => {
      const f = figure(valuesOf(rowOf(result, row.id), spec.key))
      return Number.isFinite(f.median) ? [{ name: row.name, role: row.role, ...f }] : []
    })
    return bars.length === 0 ? [] : [{ title: spec.title, format: spec.format, bars }]
  })

const escapeXml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const colours = { leasehold: "#2563eb", peer: "#9ca3af", baseline: "#d1d5db" } as const

/**
 * Renders the panels as one SVG document.
 *
 * @category chart
 * @since 0.1.0
 */
export const renderChart = (panels: ReadonlyArray<Panel>, caption: string): string => {
  const width = 940
  const labelWidth = 200
  const barWidth = 480
  const rowHeight = 20
  const parts: Array<string> = []
  let y = 28
  parts.push(`<text x="12" y="18" class="caption">${escapeXml(caption)}</text>`)
  for (const panel of panels) {
    y += 22
    parts.push(`<text x="12" y="${y}" class="title">${escapeXml(panel.title)}</text>`)
    y += 8
    // The scale fits the medians; a whisker that reaches further is cut at the edge of the panel and marked.
    const top = Math.max(...panel.bars.map((bar) => bar.median), Number.MIN_VALUE) * 1.15
    const scale = (value: number) => Math.min(barWidth, (Math.max(0, value) / top) * barWidth)
    for (const bar of panel.bars) {
      const x0 = labelWidth
      const middle = y + rowHeight / 2
      parts.push(
        `<text x="${x0 - 8}" y="${middle + 4}" class="label" text-anchor="end">${escapeXml(bar.name)}</text>`,
        `<rect x="${x0}" y="${y + 3}" width="${scale(bar.median).toFixed(1)}" height="${rowHeight - 6}" ` +
          `fill="${colours[bar.role]}"/>`
      )
      const cut = (bar.max / top) * barWidth > barWidth
      if (bar.max > bar.min) {
        parts.push(
          `<line x1="${(x0 + scale(bar.min)).toFixed(1)}" x2="${(x0 + scale(bar.max)).toFixed(1)}" ` +
            `y1="${middle}" y2="${middle}" class="whisker"/>`
        )
      }
      const label = `${formatValue(bar.median, panel.format)}${cut ? ` (range to ${formatValue(bar.max, panel.format)})` : ""}`
      parts.push(
        `<text x="${(x0 + Math.max(scale(bar.median), scale(bar.max)) + 6).toFixed(1)}" y="${middle + 4}" ` +
          `class="value">${escapeXml(label)}</text>`
      )
      y += rowHeight
    }
  }
  const height = y + 16
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="system-ui, sans-serif" font-size="12">`,
    "<title>leasehold benchmarks: medians per library, whiskers the range over rounds</title>",
    `<style>.caption{font-size:11px;fill:#4b5563}.title{font-weight:600;fill:#111827}.label{fill:#111827}` +
      `.value{fill:#374151}.whisker{stroke:#111827;stroke-width:1.5}</style>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}
