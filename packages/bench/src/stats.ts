/**
 * Small statistics for the bench: percentiles, medians with their range over rounds, and Jain's fairness index.
 *
 * @since 0.1.0
 */

/**
 * A figure measured once per round: the median and the range over the rounds.
 *
 * @category models
 * @since 0.1.0
 */
export interface Figure {
  readonly median: number
  readonly min: number
  readonly max: number
}

/**
 * The `p`-th percentile (0 to 100) of `values`, by linear interpolation between the closest ranks; `NaN` when empty.
 *
 * @category statistics
 * @since 0.1.0
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low)
}

/**
 * The median of `values`; `NaN` when empty.
 *
 * @category statistics
 * @since 0.1.0
 */
export const median = (values: ReadonlyArray<number>): number => percentile(values, 50)

/**
 * The median and the range of per-round values, ignoring rounds where the figure is not a number.
 *
 * @category statistics
 * @since 0.1.0
 */
export const figure = (perRound: ReadonlyArray<number>): Figure => {
  const values = perRound.filter((value) => Number.isFinite(value))
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

/**
 * Jain's fairness index of per-worker counts: `(Σx)² / (n·Σx²)`, 1 when every worker got the same share, `1/n`
 * when one worker got everything; `NaN` when nobody got anything.
 *
 * @category statistics
 * @since 0.1.0
 */
export const jain = (counts: ReadonlyArray<number>): number => {
  const sum = counts.reduce((a, b) => a + b, 0)
  const squares = counts.reduce((a, b) => a + b * b, 0)
  return squares === 0 ? Number.NaN : (sum * sum) / (counts.length * squares)
}
