/** What the shutdown chaos test and its program (`shutdownWorker.ts`) say to each other. */

/**
 * What Redis does, from 50 ms into the work:
 * - `pause`: `SIGSTOP`, for the rest of the program's life;
 * - `pause-then-kill`: `SIGSTOP`, then `SIGCONT` and `SIGKILL` at once after `withLease` returned (the repro);
 * - `kill`: `SIGKILL`;
 * - `blackhole`: a partition (the parent's `TcpProxy`): bytes are taken, nothing is answered;
 * - `garbage`: every reply from then on is bytes that are not RESP (the parent's proxy);
 * - `late`: every reply from then on comes 10 s late, long after the command timeout (the parent's proxy).
 */
export type Fault = "pause" | "pause-then-kill" | "kill" | "blackhole" | "garbage" | "late"

/** The program's one argument. */
export interface ShutdownConfig {
  /** Redis, or the parent's proxy in front of it. */
  readonly url: string
  readonly redisPid: number
  readonly disableOfflineQueue: boolean
  readonly commandTimeoutMillis: number
  readonly fault: Fault
  /** How long the work goes on after the fault (past the 1 s TTL: the lease is lost). */
  readonly workMillis: number
}

/** The program's lines on stdout, `at` in milliseconds since it started. */
export type ShutdownLine =
  | { readonly type: "fault"; readonly at: number }
  | {
      readonly type: "returned"
      readonly at: number
      readonly outcome: "success" | "lease-error" | "other"
      /** The work's result, the `LeaseError` reason's tag, or the start of the cause. */
      readonly detail: string
    }
  | { readonly type: "closed"; readonly at: number }
