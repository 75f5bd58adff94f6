/**
 * The messages between the bench and its worker processes (Node IPC, JSON).
 *
 * @since 0.1.0
 */
import type { Metrics } from "./results.ts"
import type { ContendOptions, WorkerReport } from "./scenarios/contention.ts"
import type { ThroughputOptions } from "./scenarios/throughput.ts"

/**
 * What a worker measures in `hold-many`: `leases` leases of `ttlMillis`, auto-renewed, held for `holdMs`.
 *
 * @category models
 * @since 0.1.0
 */
export interface HoldManyOptions {
  readonly subject: string
  readonly url: string
  readonly leases: number
  readonly ttlMillis: number
  readonly holdMs: number
  readonly concurrency: number
}

/**
 * What a worker measures in `mem`: `cycles` acquire+release cycles, `concurrency` at a time.
 *
 * @category models
 * @since 0.1.0
 */
export interface MemOptions {
  readonly subject: string
  readonly url: string
  readonly ttlMillis: number
  readonly cycles: number
  readonly concurrency: number
}

/**
 * Messages to a worker.
 * - `contend-setup`: connect the subject (and a counter connection); answered by `ready`.
 * - `contend-go`: run the contention workers; answered by `contended`.
 * - `contend-teardown`: close them; answered by `closed`.
 * - `hold-many`, `mem`: run one measurement in this fresh process; answered by `measured`.
 * - `exit`: leave.
 *
 * @category models
 * @since 0.1.0
 */
export type ToWorker =
  | { readonly type: "contend-setup"; readonly subject: string; readonly url: string; readonly ttlMillis: number }
  | { readonly type: "contend-go"; readonly options: ContendOptions; readonly counterKey: string }
  | { readonly type: "throughput-go"; readonly options: ThroughputOptions }
  | { readonly type: "contend-teardown" }
  | { readonly type: "hold-many"; readonly options: HoldManyOptions }
  | { readonly type: "mem"; readonly options: MemOptions }
  | { readonly type: "exit" }

/**
 * Messages from a worker; `failed` answers any request that threw.
 *
 * @category models
 * @since 0.1.0
 */
export type FromWorker =
  | { readonly type: "hello" }
  | { readonly type: "ready" }
  | { readonly type: "contended"; readonly report: WorkerReport }
  | { readonly type: "closed" }
  | { readonly type: "measured"; readonly metrics: Metrics }
  | { readonly type: "throughput"; readonly metrics: Metrics; readonly lastError?: string | undefined }
  | { readonly type: "failed"; readonly error: string }
