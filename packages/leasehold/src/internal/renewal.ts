import { Cause, Deferred, Duration, Effect, Result } from "effect"
import * as LeaseError from "../LeaseError.ts"
import type * as LeaseStore from "../LeaseStore.ts"
import { monotonicMillis } from "./clock.ts"
import { driftMillis, Handle, reactionMillis } from "./handle.ts"

/** What the renew loop reports to: the observer's callbacks, already made unable to fail. */
export interface RenewalEvents {
  readonly renewed: (lease: Handle) => Effect.Effect<void>
  readonly renewFailed: (lease: Handle, error: LeaseError.LeaseError) => Effect.Effect<void>
  readonly lost: (lease: Handle, reason: LeaseError.LostBecause) => Effect.Effect<void>
}

/**
 * Renews every `intervalMillis` (measured from the start of the last successful renew). Each attempt is bounded
 * by the lease's validity deadline less the reaction time; a failed attempt is retried until then. On a definite
 * "not held" or at that deadline, the loss is published in `lost` and `onLost` runs.
 */
export const keepRenewed = (
  store: LeaseStore.LeaseStore,
  events: RenewalEvents,
  first: Handle,
  intervalMillis: number,
  update: (lease: Handle) => void,
  lost: Deferred.Deferred<LeaseError.LeaseLost>,
  onLost: Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const ttlMillis = Duration.toMillis(first.ttl)
    const margin = ttlMillis - driftMillis(ttlMillis)
    const reaction = reactionMillis(ttlMillis)
    let lease = first
    const lose = (reason: LeaseError.LostBecause) =>
      Effect.gen(function* () {
        yield* events.lost(lease, reason)
        yield* Deferred.succeed(lost, new LeaseError.LeaseLost({ key: lease.key, reason, fence: lease.fence }))
        yield* onLost
      })
    while (true) {
      const renewedAt = lease.validUntil - margin
      const sleepFor = renewedAt + intervalMillis - (yield* monotonicMillis)
      if (sleepFor > 0) yield* Effect.sleep(Duration.millis(Math.ceil(sleepFor)))
      for (let failures = 0; ; failures++) {
        const t0 = yield* monotonicMillis
        const deadline = lease.validUntil - reaction
        const left = deadline - t0
        if (left <= 0) return yield* lose("store-unavailable")
        const reply = yield* store.renew(lease.key, lease.token, ttlMillis).pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(Math.ceil(left)),
            orElse: () =>
              Effect.fail(
                LeaseError.make(
                  new LeaseError.StoreUnavailable({
                    operation: "renew",
                    key: lease.key,
                    cause: new Cause.TimeoutError("no renew reply before the lease's validity deadline")
                  })
                )
              )
          }),
          Effect.result
        )
        if (Result.isSuccess(reply)) {
          if (reply.success !== "renewed") return yield* lose(reply.success)
          lease = new Handle({ ...lease, validUntil: t0 + margin })
          update(lease)
          yield* events.renewed(lease)
          break
        }
        yield* events.renewFailed(lease, reply.failure)
        const retryIn = Math.min(10 * 2 ** failures, intervalMillis / 2, deadline - (yield* monotonicMillis))
        if (retryIn > 0) yield* Effect.sleep(Duration.millis(Math.ceil(retryIn)))
      }
    }
  })
