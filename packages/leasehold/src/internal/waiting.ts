import { Data, Deferred, Duration, Effect, Option, Scope } from "effect"
import type { LeaseAttempt } from "../Lease.ts"
import * as LeaseError from "../LeaseError.ts"
import type { LeaseKey } from "../LeaseKey.ts"
import type { LeaseOwner } from "../LeaseOwner.ts"
import type * as LeaseStore from "../LeaseStore.ts"
import { monotonicMillis } from "./clock.ts"
import type { Handle } from "./handle.ts"
import type * as validate from "./validate.ts"
import * as waitRoom from "./waitRoom.ts"

/** One blocking acquire: its key, when it started, its budget, and how it tries. */
interface Budget {
  readonly key: LeaseKey
  readonly start: number
  readonly millis: number
  readonly tryOnce: TryOnce
  readonly onAcquired: (lease: Handle) => Effect.Effect<void>
}

/** Held: an internal failure that drives the retries of a `Schedule` wait. */
class StillHeld extends Data.TaggedError("StillHeld")<{ readonly attempt: LeaseAttempt & { _tag: "Held" } }> {}

/**
 * One acquire attempt with a fresh token (see `Lease.make`); `onAcquired` runs uninterruptibly with the new lease.
 */
export type TryOnce = (
  onAcquired: (lease: Handle) => Effect.Effect<void>
) => Effect.Effect<LeaseAttempt, LeaseError.LeaseError>

const timedOut = (key: LeaseKey, waitedMillis: number, holder: Option.Option<LeaseOwner> | undefined) =>
  Effect.fail(
    LeaseError.make(
      new LeaseError.AcquireTimeout({
        key,
        waited: Duration.millis(Math.round(waitedMillis)),
        holder: holder === undefined ? undefined : Option.getOrUndefined(holder)
      })
    )
  )

/**
 * Blocking acquires for one `Lease` service: the process's queues of waiters, and its one subscription to the
 * store's release announcements, opened by the first waiter and kept as long as `layerScope`. `tryMaxMillis`, when
 * known, is the longest one try can take (the store's bound on an operation plus the undo of a failed acquire).
 */
export const make = (store: LeaseStore.LeaseStore, layerScope: Scope.Scope, tryMaxMillis: number | undefined) => {
  const room = waitRoom.make<Option.Option<LeaseOwner>>()

  /**
   * Each release reaches the waiters twice when this process made it: from the release's own reply (at once) and
   * from the store's announcement (a hop later). The first wakes the head of the key's queue; the second, matched
   * by key and fence, is dropped, so a release wakes one waiter once.
   */
  const heard = new Map<string, "here" | "store">()
  const announce = (key: string, fence: bigint | undefined, from: "here" | "store") => {
    if (fence !== undefined && room.hasWaiters(key)) {
      const id = `${fence}:${key}`
      const before = heard.get(id)
      if (before !== undefined && before !== from) {
        heard.delete(id)
        return
      }
      heard.set(id, from)
      if (heard.size > 4_096) heard.delete(heard.keys().next().value!)
    }
    room.notify(key)
  }
  const unwatched: LeaseStore.ReleaseWatch = { healthy: () => false }
  let watching: Deferred.Deferred<LeaseStore.ReleaseWatch> | undefined

  /**
   * The store's release announcements, opened once (one subscription per process and store, shared by every
   * waiter). If they cannot be opened, waiters poll, and the next waiter tries to open them again.
   */
  const releaseWatch = Effect.suspend(() => {
    if (watching !== undefined) return Deferred.await(watching)
    const opened = Deferred.makeUnsafe<LeaseStore.ReleaseWatch>()
    watching = opened
    const open = store
      .watchReleases((key, fence) => announce(key, fence, "store"))
      .pipe(
        Scope.provide(layerScope),
        Effect.catch((error) =>
          Effect.logWarning("leasehold: cannot listen for releases; waiters poll", error.message).pipe(
            Effect.andThen(
              Effect.sync(() => {
                watching = undefined
              })
            ),
            Effect.as(unwatched)
          )
        ),
        Effect.flatMap((watch) => Deferred.succeed(opened, watch))
      )
    return Effect.forkIn(open, layerScope).pipe(Effect.andThen(Deferred.await(opened)))
  })

  /**
   * Waits for a held key in this process's queue for it: first come, first served. Only the head sends commands:
   * it tries, and when the key is held it sleeps until a release is announced, or until the holder's lease would
   * expire (a crashed holder), or, when the announcements are not heard, a jittered safety-net delay.
   */
  const waitInQueue = (
    key: LeaseKey,
    ttlMillis: number,
    budgetMillis: number,
    tryOnce: TryOnce,
    onAcquired: (lease: Handle) => Effect.Effect<void>
  ): Effect.Effect<Handle, LeaseError.LeaseError> =>
    Effect.flatMap(monotonicMillis, (start) => {
      const budget: Budget = { key, start, millis: budgetMillis, tryOnce, onAcquired }
      if (room.hasWaiters(key)) return queued(budget, ttlMillis)
      // Nobody of this process waits for the key: try at once, and join the queue only if it is held.
      if (budgetMillis === 0) {
        return Effect.flatMap(tryOnce(onAcquired), (only) =>
          only._tag === "Acquired" ? Effect.succeed(only.lease) : timedOut(key, 0, only.owner)
        )
      }
      return Effect.flatMap(tryWithin(budget), (first) => {
        if (Option.isNone(first)) return outOfBudget(budget, undefined)
        return first.value._tag === "Acquired" ? Effect.succeed(first.value.lease) : queued(budget, ttlMillis)
      })
    })

  const budgetLeft = (budget: Budget) => Effect.map(monotonicMillis, (now) => budget.start + budget.millis - now)

  /**
   * A try bounded by what is left of the budget (`None` when the budget ran out first). When a try is known to end
   * within `tryMaxMillis`, it needs no timer of ours while the budget left is longer than that.
   */
  const tryWithin = (budget: Budget) =>
    Effect.flatMap(budgetLeft(budget), (left) => {
      if (left <= 0) return Effect.succeedNone
      if (tryMaxMillis !== undefined && tryMaxMillis < left) return Effect.asSome(budget.tryOnce(budget.onAcquired))
      return Effect.timeoutOption(budget.tryOnce(budget.onAcquired), Math.ceil(left))
    })

  const outOfBudget = (budget: Budget, holder: Option.Option<LeaseOwner> | undefined) =>
    Effect.flatMap(monotonicMillis, (now) => timedOut(budget.key, now - budget.start, holder))

  /** Waits in the key's queue (see `waitInQueue`), after a first try found the key held or others waiting. */
  const queued = (budget: Budget, ttlMillis: number): Effect.Effect<Handle, LeaseError.LeaseError> =>
    Effect.scoped(
      Effect.gen(function* () {
        const { key, start, millis: budgetMillis } = budget
        // Listen before the next try, so that a release between that try and the sleep after it is not missed.
        // A store that does not answer the subscription in time leaves this waiter polling instead.
        const watch = yield* releaseWatch.pipe(
          Effect.timeoutOption(Math.max(0, Math.ceil(yield* budgetLeft(budget)))),
          Effect.map(Option.getOrElse(() => unwatched))
        )
        const ticket = yield* room.join(key)
        let probe = ticket.isHead()
        let fallbackMillis = Number.POSITIVE_INFINITY
        let safetyNetMillis = 100
        while (true) {
          if (probe && ticket.isHead()) {
            const attempt = yield* tryWithin(budget)
            if (Option.isNone(attempt)) return yield* outOfBudget(budget, ticket.holder())
            const result = attempt.value
            if (result._tag === "Acquired") {
              ticket.leave(ttlMillis)
              return result.lease
            }
            ticket.sawHolder(result.owner)
            fallbackMillis = Duration.toMillis(result.remaining) + 1
          }
          const now = yield* monotonicMillis
          const left = start + budgetMillis - now
          if (left <= 0) return yield* timedOut(key, now - start, ticket.holder())
          const head = ticket.isHead()
          const safetyNet = watch.healthy() ? Number.POSITIVE_INFINITY : safetyNetMillis * (0.8 + Math.random() * 0.4)
          const woken = yield* ticket.sleep(head ? Math.min(fallbackMillis, safetyNet, left) : left)
          if (woken === undefined) {
            probe = head
            if (head && !watch.healthy()) safetyNetMillis = Math.min(safetyNetMillis * 2, 2_000)
            continue
          }
          probe = woken.probe
          if (woken.fallbackMillis !== undefined) fallbackMillis = woken.fallbackMillis
        }
      })
    )

  /** Tries until acquired, as the wait policy allows; fails with `AcquireTimeout` when it runs out. */
  const acquireWaiting = (
    key: LeaseKey,
    ttlMillis: number,
    wait: validate.WaitPolicy,
    tryOnce: TryOnce,
    onAcquired: (lease: Handle) => Effect.Effect<void>
  ): Effect.Effect<Handle, LeaseError.LeaseError> => {
    if (wait._tag === "Budget") return waitInQueue(key, ttlMillis, wait.millis, tryOnce, onAcquired)
    return Effect.flatMap(monotonicMillis, (start) =>
      tryOnce(onAcquired).pipe(
        Effect.flatMap((result) =>
          result._tag === "Acquired" ? Effect.succeed(result.lease) : Effect.fail(new StillHeld({ attempt: result }))
        ),
        Effect.retry({ schedule: wait.schedule, while: (e) => e._tag === "StillHeld" }),
        Effect.catchTag("StillHeld", (held) =>
          Effect.flatMap(monotonicMillis, (now) => timedOut(key, now - start, held.attempt.owner))
        )
      )
    )
  }

  /** A release made by this process: wakes the head of the key's queue without waiting for the announcement. */
  const releasedHere = (key: LeaseKey, fence: bigint) => announce(key, fence, "here")

  return { acquireWaiting, releasedHere }
}
