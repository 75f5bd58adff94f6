import { Cause, Deferred, Duration, Effect, Result, type Scope } from "effect"
import * as LeaseError from "../LeaseError.ts"
import type * as LeaseStore from "../LeaseStore.ts"
import { monotonicMillis } from "./clock.ts"
import { driftMillis, type Handle, makeHandle, reactionMillis } from "./handle.ts"
import * as LoopDelay from "./loopDelay.ts"

/** What the renewer reports to: the observer's callbacks, already made unable to fail. */
export interface RenewalEvents {
  readonly renewed: ((lease: Handle) => Effect.Effect<void>) | undefined
  readonly renewFailed: (lease: Handle, error: LeaseError.LeaseError) => Effect.Effect<void>
  readonly lost: (lease: Handle, because: LeaseError.LostBecause) => Effect.Effect<void>
}

/** One auto-renewed lease, as the renewer keeps it; `lease` is the handle as of its latest renew. */
export interface Renewal {
  lease: Handle
  readonly ttlMillis: number
  readonly intervalMillis: number
  /** From the start of the last successful renew to `validUntil`. */
  readonly margin: number
  readonly reaction: number
  /** Added to `reaction` while this process's timers run late (see loopDelay.ts). */
  readonly lateness: LoopDelay.Lateness
  readonly lost: Deferred.Deferred<LeaseError.LeaseLost>
  readonly onLost: Effect.Effect<void>
  nextAt: number
  failures: number
  inFlight: boolean
  stopped: boolean
}

/** How much earlier than due a lease may be renewed to join a batch: a tenth of its interval, at most 50 ms. */
const batchWindow = (renewal: Renewal) => Math.min(50, renewal.intervalMillis / 10)

/** The deadline by which a renew must have landed: `validUntil` less the reaction time and the timers' lateness. */
const deadlineOf = (renewal: Renewal) => renewal.lease.validUntil - renewal.reaction - renewal.lateness.millis()

/**
 * The pause before retrying a failed renew: 10 ms doubling, at most half the interval, and at most an eighth of the
 * time left before the deadline (at least 10 ms). A store that comes back shortly before a lease's deadline is then
 * tried again soon enough to keep it.
 */
const retryDelay = (renewal: Renewal, now: number) =>
  Math.min(10 * 2 ** renewal.failures, renewal.intervalMillis / 2, Math.max(10, (deadlineOf(renewal) - now) / 8))

/**
 * The renewals of every auto-renewed lease of one `Lease` service, run by one fiber instead of one per lease: it
 * sleeps until the next lease is due, then renews together every lease due within a short window (one script per
 * batch on Redis), each batch bounded by the earliest deadline in it. A lease is renewed every `intervalMillis`
 * from the start of its last successful renew; a failed renew is retried until its deadline; a definite "not held",
 * or the deadline passing, loses it: `events.lost`, then `lost` completes, then `onLost` runs.
 */
export const make = (store: LeaseStore.LeaseStore, events: RenewalEvents, layerScope: Scope.Scope) => {
  const renewals = new Set<Renewal>()
  let alarm = Deferred.makeUnsafe<void>()
  /** The loop starts with the first lease and runs, asleep when there is nothing to renew, until the layer closes. */
  let started = false

  /**
   * When the sleeping loop looks again (`-Infinity` while it scans). A lease added later than that needs no wake-up:
   * without this, adding N leases would rescan the set N times (10,000 leases took 1.6 s to acquire).
   */
  let looksAgainAt = Number.NEGATIVE_INFINITY

  const wake = () => Deferred.doneUnsafe(alarm, Effect.void)

  const lose = (renewal: Renewal, because: LeaseError.LostBecause) =>
    Effect.gen(function* () {
      renewals.delete(renewal)
      renewal.lateness.release()
      if (renewal.stopped) return
      renewal.stopped = true
      yield* events.lost(renewal.lease, because)
      const lease = renewal.lease
      yield* Deferred.succeed(renewal.lost, new LeaseError.LeaseLost({ key: lease.key, because, fence: lease.fence }))
      yield* renewal.onLost
    })

  const timedOut = (key: string) =>
    LeaseError.make(
      new LeaseError.StoreUnavailable({
        operation: "renew",
        key,
        cause: new Cause.TimeoutError("no renew reply before the lease's validity deadline")
      })
    )

  /** Renews one batch and applies each reply; failures are retried later, until each lease's deadline. */
  const renewBatch = (batch: ReadonlyArray<Renewal>, t0: number) =>
    Effect.gen(function* () {
      const bound = Math.min(...batch.map(deadlineOf)) - t0
      const replies = yield* store
        .renewMany(batch.map((r) => ({ key: r.lease.key, token: r.lease.token, ttlMillis: r.ttlMillis })))
        .pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(Math.max(1, Math.ceil(bound))),
            orElse: () => Effect.fail(timedOut(batch[0]!.lease.key))
          }),
          Effect.result
        )
      const now = yield* monotonicMillis
      for (const [i, renewal] of batch.entries()) {
        renewal.inFlight = false
        if (renewal.stopped) continue
        if (Result.isSuccess(replies)) {
          const reply = replies.success[i]!
          if (reply !== "renewed") {
            yield* lose(renewal, reply)
            continue
          }
          renewal.lease = makeHandle({ ...renewal.lease, validUntil: t0 + renewal.margin })
          renewal.failures = 0
          renewal.nextAt = t0 + renewal.intervalMillis
          if (events.renewed !== undefined) yield* events.renewed(renewal.lease)
          continue
        }
        yield* events.renewFailed(renewal.lease, replies.failure)
        const retryAt = now + retryDelay(renewal, now)
        renewal.failures++
        if (now >= deadlineOf(renewal)) yield* lose(renewal, "store-unavailable")
        else renewal.nextAt = Math.min(retryAt, deadlineOf(renewal))
      }
      wake()
    })

  /** The one loop: lose what is past its deadline, send what is due, sleep until the next lease is due. */
  const loop = Effect.gen(function* () {
    while (true) {
      // A new alarm before the scan: a lease added or a batch done after this point wakes the sleep below.
      alarm = Deferred.makeUnsafe<void>()
      looksAgainAt = Number.NEGATIVE_INFINITY
      const now = yield* monotonicMillis
      const due: Array<Renewal> = []
      let next = Number.POSITIVE_INFINITY
      for (const renewal of renewals) {
        if (renewal.inFlight) continue
        if (now >= deadlineOf(renewal)) {
          yield* lose(renewal, "store-unavailable")
          continue
        }
        if (renewal.nextAt <= now) due.push(renewal)
        else next = Math.min(next, renewal.nextAt)
      }
      if (due.length > 0) {
        // Leases due a little later join the batch (renewed early, never late).
        for (const renewal of renewals) {
          if (!renewal.inFlight && renewal.nextAt > now && renewal.nextAt <= now + batchWindow(renewal)) {
            due.push(renewal)
          }
        }
        for (const renewal of due) renewal.inFlight = true
        yield* Effect.forkIn(renewBatch(due, now), layerScope)
        continue
      }
      looksAgainAt = next
      if (next === Number.POSITIVE_INFINITY) yield* Deferred.await(alarm)
      else yield* Effect.raceFirst(Deferred.await(alarm), Effect.sleep(Duration.millis(Math.ceil(next - now))))
    }
  })

  /**
   * Starts renewing `first` every `intervalMillis`: the returned record's `lease` follows the renews. On loss,
   * `lost` is completed and `onLost` runs. Stop it with `stop`.
   */
  const add = (
    first: Handle,
    intervalMillis: number,
    lost: Deferred.Deferred<LeaseError.LeaseLost>,
    onLost: Effect.Effect<void>
  ): Effect.Effect<Renewal> =>
    Effect.clockWith((clock) => {
      const ttlMillis = Duration.toMillis(first.ttl)
      const margin = ttlMillis - driftMillis(ttlMillis)
      const renewal: Renewal = {
        lease: first,
        ttlMillis,
        intervalMillis,
        margin,
        reaction: reactionMillis(ttlMillis),
        lateness: LoopDelay.watch(clock, ttlMillis),
        lost,
        onLost,
        nextAt: first.validUntil - margin + intervalMillis,
        failures: 0,
        inFlight: false,
        stopped: false
      }
      renewals.add(renewal)
      if (started) {
        if (looksAgainAt === Number.NEGATIVE_INFINITY || renewal.nextAt < looksAgainAt) wake()
        return Effect.succeed(renewal)
      }
      started = true
      return Effect.as(Effect.forkIn(loop, layerScope), renewal)
    })

  /** Stops renewing: the lease is left as it is (its release is the caller's). */
  const stop = (renewal: Renewal): Effect.Effect<void> =>
    Effect.sync(() => {
      renewal.stopped = true
      renewals.delete(renewal)
      renewal.lateness.release()
    })

  return { add, stop }
}
