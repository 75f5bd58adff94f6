/**
 * What the chaos parent and its worker processes (`worker.ts`) say to each other, and the seeded random numbers both
 * use. The parent passes a `WorkerConfig` as the worker's one argument (JSON), then writes one `Go` line on its
 * stdin; the worker answers with `WorkerLine`s on stdout, one JSON object a line.
 */

export interface WorkerConfig {
  /** Names the process in records and owners: its holders are `${id}/${worker}`. */
  readonly id: string
  /** Where the leases are (possibly a proxy in front of the lease store). */
  readonly leaseUrl: string
  /** Where the protected resource is (see `FencedResource.ts`), and its name there: one resource per key, `<resource>:<key>`. */
  readonly resourceUrl: string
  readonly resource: string
  /** Whether the resource is on the lease store's server, so that each step checks the lease there too. */
  readonly checkLease: boolean
  readonly keys: ReadonlyArray<string>
  readonly workers: number
  readonly ttlMillis: number
  readonly holdMillis: readonly [number, number]
  readonly stepEveryMillis: number
  readonly waitMillis: number
  readonly commandTimeoutMillis: number
  /** Leases per worker at most (the soak: unbounded, only time bounds it). */
  readonly leasesPerWorker?: number | undefined
  readonly seed: number
}

/** The parent's start signal: work until `untilEpochMillis` (wall clock), then stop. */
export interface Go {
  readonly untilEpochMillis: number
}

export type Outcome =
  | "completed"
  | "lost:expired"
  | "lost:stolen"
  | "lost:store-unavailable"
  | "acquire-timeout"
  | "store-unavailable"
  /** Another `LeaseError` reason, by its tag. */
  | `failed:${string}`
  /** Not a typed `LeaseError`: interrupted with no failure, a defect, or another error. */
  | "interrupted"
  | "defect"
  | "error"

/** One lease a worker held: when its work began and ended (wall clock), its steps, and how it ended. */
export interface LeaseRecord {
  readonly type: "lease"
  readonly holder: string
  readonly key: string
  readonly fence: string
  readonly startedAt: number
  /** When the work ended, just before its last `ensureValid`; absent when that failed or the work was interrupted. */
  readonly workEndedAt?: number | undefined
  /** When `withLease` returned (after the release). */
  readonly endedAt: number
  readonly steps: number
  /** Steps the resource saw with a fence lower than one it had seen (refused by a fenced resource). */
  readonly staleSteps: number
  /** Steps that ran while the lease was not held in the store (only with `checkLease`). */
  readonly unheldSteps: number
  readonly outcome: Outcome
  readonly detail?: string | undefined
}

export type WorkerLine =
  | { readonly type: "ready"; readonly pid: number }
  | { readonly type: "going" }
  | LeaseRecord
  | {
      readonly type: "attempt"
      readonly holder: string
      readonly key: string
      /** Wall clock, when the attempt gave up. */
      readonly at: number
      readonly outcome: Outcome
      readonly detail?: string | undefined
    }
  /** The last line, once every layer has closed: the work's totals, and how long the close took. */
  | { readonly type: "result"; readonly leases: number; readonly attempts: number; readonly closeMillis: number }
  | { readonly type: "stuck" }

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export const random = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A uniform number in [min, max). */
export const between = (next: () => number, min: number, max: number): number => min + (max - min) * next()

/** A seed derived from another and a label, so that each worker has its own reproducible stream. */
export const derive = (seed: number, label: string): number => {
  let hash = seed >>> 0
  for (let i = 0; i < label.length; i++) hash = Math.imul(hash ^ label.charCodeAt(i), 0x01000193) >>> 0
  return hash
}
