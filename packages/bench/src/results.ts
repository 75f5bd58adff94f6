/**
 * What a scenario produces: per subject, either figures measured once per round, or why it was not run, or why it
 * failed. Plain data, so a worker process can send it and `--json` can save it.
 *
 * @since 0.1.0
 */
import type { ScenarioId, Spec } from "./subjects/Subject.ts"

/**
 * The figures of one round, by name (e.g. `cyclesPerSec`, `p99`).
 *
 * @category models
 * @since 0.1.0
 */
export type Metrics = Readonly<Record<string, number>>

/**
 * A subject's outcome in one scenario.
 * - `measured`: one `Metrics` per round that completed, and the errors met along the way (failed rounds, failed
 *   operations).
 * - `na`: the subject cannot do this scenario, and why.
 * - `failed`: no round completed; the first error.
 *
 * @category models
 * @since 0.1.0
 */
export type Outcome =
  | { readonly _tag: "measured"; readonly rounds: ReadonlyArray<Metrics>; readonly errors: ReadonlyArray<string> }
  | { readonly _tag: "na"; readonly reason: string }
  | { readonly _tag: "failed"; readonly error: string }

/**
 * One subject's line in a scenario's table.
 *
 * @category models
 * @since 0.1.0
 */
export interface Row {
  readonly id: string
  readonly name: string
  readonly role: Spec["role"]
  readonly outcome: Outcome
}

/**
 * One scenario: its rows in table order, and how it was run (rounds, durations, sizes), in words.
 *
 * @category models
 * @since 0.1.0
 */
export interface ScenarioResult {
  readonly id: ScenarioId
  readonly setup: string
  readonly rows: ReadonlyArray<Row>
}

/**
 * Collects per-round metrics and errors of several subjects, and turns them into rows.
 *
 * @category constructors
 * @since 0.1.0
 */
export const collector = (specs: ReadonlyArray<Spec>, scenario: ScenarioId) => {
  const rounds = new Map<string, Array<Metrics>>()
  const errors = new Map<string, Array<string>>()
  return {
    add: (id: string, metrics: Metrics) => {
      rounds.set(id, [...(rounds.get(id) ?? []), metrics])
    },
    error: (id: string, error: string) => {
      errors.set(id, [...(errors.get(id) ?? []), error])
    },
    rows: (): ReadonlyArray<Row> =>
      specs.map((spec): Row => {
        const base = { id: spec.id, name: spec.name, role: spec.role }
        const reason = spec.unsupported[scenario]
        if (reason !== undefined) return { ...base, outcome: { _tag: "na", reason } }
        const measured = rounds.get(spec.id) ?? []
        const met = errors.get(spec.id) ?? []
        if (measured.length === 0) return { ...base, outcome: { _tag: "failed", error: met[0] ?? "not run" } }
        return { ...base, outcome: { _tag: "measured", rounds: measured, errors: met } }
      })
  }
}

/**
 * The order of subjects in round `round`: rotated by one each round, so no subject always runs first or last.
 *
 * @category utils
 * @since 0.1.0
 */
export const rotate = <A>(items: ReadonlyArray<A>, round: number): ReadonlyArray<A> => {
  if (items.length === 0) return items
  const shift = round % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}
