/**
 * Number formats of the report.
 *
 * @since 0.1.0
 */

/**
 * How a figure is written.
 *
 * @category models
 * @since 0.1.0
 */
export type Format = "rate" | "ms" | "ratio" | "bytes" | "count" | "mb" | "index" | "seconds" | "micros"

const grouped = (value: number, digits = 0) => {
  const text = value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
  return /^-[0.]+$/.test(text) ? text.slice(1) : text
}

/**
 * Writes `value` in `format`; `–` for a missing value.
 *
 * @category formatting
 * @since 0.1.0
 */
export const formatValue = (value: number | undefined, format: Format): string => {
  if (value === undefined || !Number.isFinite(value)) return "–"
  switch (format) {
    case "rate":
      return Math.abs(value) >= 100 ? grouped(value) : grouped(value, 1)
    case "ms":
    case "seconds":
      return value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : grouped(value, 1)
    case "micros":
      return value < 10 ? value.toFixed(2) : grouped(value, 1)
    case "ratio":
      return `${value < 10 ? value.toFixed(2) : grouped(value, 1)}×`
    case "bytes":
      return Math.abs(value) < 10_240 ? `${grouped(value)} B` : `${grouped(value / 1024, 1)} KiB`
    case "count":
      return grouped(value)
    case "mb":
      return grouped(value, 1)
    case "index":
      return value.toFixed(3)
  }
}

/**
 * `n` and the word, plural unless `n` is 1: `plural(3, "round")` is "3 rounds".
 *
 * @category formatting
 * @since 0.1.0
 */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`
