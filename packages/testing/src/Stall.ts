/**
 * Stalls of the whole process, for chaos tests: a synchronous busy wait that blocks the event loop, as a long GC
 * pause or a CPU-bound callback would. No timer, socket or fiber of the process runs meanwhile, the lease's renew
 * fiber included; other processes (Redis, other holders) go on.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Lease } from "leasehold"
 * import { Stall } from "@leasehold/testing"
 *
 * Lease.withLease("job", "300 millis", (lease) =>
 *   Effect.gen(function* () {
 *     yield* Stall.stall("1 second") // the lease expires in Redis meanwhile
 *     yield* lease.ensureValid // fails with LeaseLost
 *   }))
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"

/**
 * Busy-waits for `millis` milliseconds (monotonic clock) and returns how long it really blocked.
 *
 * @category utils
 * @since 0.1.0
 */
export const stallUnsafe = (millis: number): number => {
  const start = performance.now()
  const until = start + millis
  let now = start
  while (now < until) {
    now = performance.now()
  }
  return now - start
}

/**
 * Blocks the event loop for `duration` and succeeds with the milliseconds it really blocked (at least `duration`).
 *
 * @category utils
 * @since 0.1.0
 */
export const stall = (duration: Duration.Input): Effect.Effect<number> =>
  Effect.sync(() => stallUnsafe(Duration.toMillis(Duration.fromInputUnsafe(duration))))
