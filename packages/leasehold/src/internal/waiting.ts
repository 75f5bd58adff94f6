import { type Cause, Data, Deferred, Duration, Effect, Option, Queue, Result, Scope } from "effect"
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

/** What waiting reports besides its result: the observer's callbacks, already made unable to fail. */
export interface WaitEvents {
  readonly heldWithoutExpiry: (held: LeaseAttempt & { _tag: "Held" }) => Effect.Effect<void>
  readonly tryFailed: (key: LeaseKey, error: LeaseError.LeaseError) => Effect.Effect<void>
}

/** Whether the store's release announcements are heard now; shared by every waiter of the process. */
interface Watch {
  hearing: boolean
}

/** A failure of one try that waiting retries (within the budget) instead of failing the waiter. */
const isRetryable = (error: LeaseError.LeaseError) => error.reason._tag === "StoreUnavailable"

/**
 * The longest a queue's head sleeps without a wake-up, whatever it waits for: a quarter of its budget (at least
 * 10 ms, at most 5 s), so that a release whose announcement was lost without a sign is found well inside the budget.
 */
const safetyNetMillis = (budgetMillis: number) => Math.max(10, Math.min(budgetMillis / 4, 5_000))

/** The pause after the `failures`-th failed try in a row: 10 ms doubling to 1 s. */
const backoffMillis = (failures: number) => Math.min(10 * 2 ** (failures - 1), 1_000)

const jittered = (millis: number) => millis * (0.8 + Math.random() * 0.4)

/**
 * Blocking acquires for one `Lease` service: the process's queues of waiters, and its one subscription to the
 * store's release announcements, opened by the first waiter and kept as long as `layerScope`. `tryMaxMillis`, when
 * known, is the longest one try can take (the store's bound on an operation plus the undo of a failed acquire).
 */
export const make = (
  store: LeaseStore.LeaseStore,
  layerScope: Scope.Scope,
  tryMaxMillis: number | undefined,
  events: WaitEvents
) => {
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
  const unwatched: Watch = { hearing: false }
  let watching: Deferred.Deferred<Watch> | undefined

  /**
   * Applies what the store's watch heard. An interruption or a resumption wakes the head of every queue to try at
   * once: a release may have gone unheard around it (and while interrupted, heads poll).
   */
  const dispatch = (releases: Queue.Dequeue<LeaseStore.ReleaseEvent, Cause.Done>, watch: Watch, stop: () => void) =>
    Queue.take(releases).pipe(
      Effect.flatMap((event) =>
        Effect.sync(() => {
          if (event._tag === "Released") return announce(event.key, event.fence, "store")
          watch.hearing = event._tag === "Resumed"
          room.notifyAll()
        })
      ),
      Effect.forever,
      Effect.catchCause(() =>
        Effect.sync(() => {
          watch.hearing = false
          stop()
          room.notifyAll()
        })
      )
    )

  /**
   * The store's release announcements, opened once (one subscription per process and store, shared by every
   * waiter). If they cannot be opened, or stop for good, waiters poll, and the next waiter tries to open them again.
   */
  const releaseWatch = Effect.suspend(() => {
    if (watching !== undefined) return Deferred.await(watching)
    const opened = Deferred.makeUnsafe<Watch>()
    watching = opened
    const stop = () => {
      if (watching === opened) watching = undefined
    }
    const open = store.watchReleases.pipe(
      Effect.flatMap((releases) => {
        const watch: Watch = { hearing: true }
        return Effect.as(Effect.forkIn(dispatch(releases, watch, stop), layerScope), watch)
      }),
      Scope.provide(layerScope),
      Effect.catch((error) =>
        Effect.logWarning("leasehold: cannot listen for releases; waiters poll", error.message).pipe(
          Effect.andThen(Effect.sync(stop)),
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
   * expire (a crashed holder), or a jittered safety-net delay within its budget (shorter while the announcements
   * are not heard). A try that fails (the store did not answer) is retried with backoff; the waiter gets that
   * failure only if its budget ends with the store still failing.
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
      if (room.hasWaiters(key)) return queued(budget, ttlMillis, undefined)
      // Nobody of this process waits for the key: try at once, and join the queue only if it is held.
      if (budgetMillis === 0) {
        return Effect.flatMap(tryOnce(onAcquired), (only) =>
          only._tag === "Acquired" ? Effect.succeed(only.lease) : timedOut(key, 0, only.owner)
        )
      }
      return Effect.flatMap(tryWithin(budget), (first) => {
        if (Option.isNone(first)) return outOfBudget(budget, undefined, undefined)
        const result = first.value
        if (Result.isFailure(result)) {
          if (!isRetryable(result.failure)) return Effect.fail(result.failure)
          return Effect.andThen(events.tryFailed(key, result.failure), queued(budget, ttlMillis, result.failure))
        }
        return result.success._tag === "Acquired" ? Effect.succeed(result.success.lease) : queued(budget, ttlMillis)
      })
    })

  const budgetLeft = (budget: Budget) => Effect.map(monotonicMillis, (now) => budget.start + budget.millis - now)

  /**
   * A try bounded by what is left of the budget (`None` when the budget ran out first), its failure as a `Result`.
   * When a try is known to end within `tryMaxMillis`, it needs no timer of ours while the budget left is longer.
   */
  const tryWithin = (budget: Budget) =>
    Effect.flatMap(budgetLeft(budget), (left) => {
      if (left <= 0) return Effect.succeedNone
      const attempt = Effect.result(budget.tryOnce(budget.onAcquired))
      if (tryMaxMillis !== undefined && tryMaxMillis < left) return Effect.asSome(attempt)
      return Effect.timeoutOption(attempt, Math.ceil(left))
    })

  /** The end of a budget: the store's failure if the last try failed, else `AcquireTimeout`. */
  const outOfBudget = (
    budget: Budget,
    holder: Option.Option<LeaseOwner> | undefined,
    failure: LeaseError.LeaseError | undefined
  ) =>
    failure !== undefined
      ? Effect.fail(failure)
      : Effect.flatMap(monotonicMillis, (now) => timedOut(budget.key, now - budget.start, holder))

  /**
   * Waits in the key's queue (see `waitInQueue`), after a first try found the key held (or failed: `failure`), or
   * others waiting.
   */
  const queued = (
    budget: Budget,
    ttlMillis: number,
    failure?: LeaseError.LeaseError
  ): Effect.Effect<Handle, LeaseError.LeaseError> =>
    Effect.scoped(
      Effect.gen(function* () {
        const { key, start, millis: budgetMillis } = budget
        const safetyNet = safetyNetMillis(budgetMillis)
        // Listen before the next try, so that a release between that try and the sleep after it is not missed.
        // A store that does not answer the subscription in time leaves this waiter polling instead.
        let watch = yield* releaseWatch.pipe(
          Effect.timeoutOption(Math.max(0, Math.ceil(Math.min(safetyNet, yield* budgetLeft(budget))))),
          Effect.map(Option.getOrElse(() => unwatched))
        )
        // On a store with per-key announcements (a Redis Cluster), subscribe to this key's before the next try too.
        if (store.watchKey !== undefined && watch.hearing) {
          const keyWatch = yield* store.watchKey(key).pipe(
            Effect.timeoutOption(Math.max(0, Math.ceil(Math.min(safetyNet, yield* budgetLeft(budget))))),
            Effect.map(Option.isSome),
            Effect.catch((error) =>
              Effect.as(
                Effect.logWarning("leasehold: cannot listen for the key's releases; it polls", error.message),
                false
              )
            )
          )
          if (!keyWatch) watch = unwatched
        }
        const ticket = yield* room.join(key)
        let lastFailure = failure
        let failures = failure === undefined ? 0 : 1
        let probe = ticket.isHead()
        let fallbackMillis = Number.POSITIVE_INFINITY
        let pollMillis = 100
        let toldNoExpiry = false
        while (true) {
          if (probe && ticket.isHead()) {
            const attempt = yield* tryWithin(budget)
            if (Option.isNone(attempt)) return yield* outOfBudget(budget, ticket.holder(), lastFailure)
            const result = attempt.value
            if (Result.isFailure(result)) {
              if (!isRetryable(result.failure)) return yield* Effect.fail(result.failure)
              lastFailure = result.failure
              failures++
              yield* events.tryFailed(key, result.failure)
            } else if (result.success._tag === "Acquired") {
              ticket.leave(ttlMillis)
              return result.success.lease
            } else {
              const held = result.success
              lastFailure = undefined
              failures = 0
              ticket.sawHolder(held.owner)
              fallbackMillis = Duration.toMillis(held.remaining) + 1
              if (!Duration.isFinite(held.remaining) && !toldNoExpiry) {
                toldNoExpiry = true
                yield* noExpiry(held)
              }
            }
          }
          const now = yield* monotonicMillis
          const left = start + budgetMillis - now
          if (left <= 0) {
            if (lastFailure !== undefined) return yield* Effect.fail(lastFailure)
            return yield* timedOut(key, now - start, ticket.holder())
          }
          const head = ticket.isHead()
          const wakeIn = !head
            ? left
            : failures > 0
              ? Math.min(jittered(backoffMillis(failures)), left)
              : Math.min(fallbackMillis, jittered(watch.hearing ? safetyNet : Math.min(pollMillis, safetyNet)), left)
          const woken = yield* ticket.sleep(wakeIn)
          if (woken === undefined) {
            probe = head
            if (head && !watch.hearing) pollMillis = Math.min(pollMillis * 2, 2_000)
            continue
          }
          probe = woken.probe
          if (woken.fallbackMillis !== undefined) fallbackMillis = woken.fallbackMillis
        }
      })
    )

  /** A key held with no expiry cannot free by itself: the observer is told, and the log says so. */
  const noExpiry = (held: LeaseAttempt & { _tag: "Held" }) =>
    Effect.logWarning(
      "leasehold: the lease key is held with no expiry in the store (written by something other than leasehold?); waiters cannot get it until it is deleted"
    ).pipe(Effect.annotateLogs({ leaseKey: held.key }), Effect.andThen(events.heldWithoutExpiry(held)))

  /**
   * Tries until acquired, as the wait policy allows; when it runs out, fails with `AcquireTimeout`, or with the
   * store's error if the last try failed.
   */
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
        // A failed try is retried as a held key is: the schedule bounds both.
        Effect.retry({
          schedule: wait.schedule,
          while: (e) => e._tag === "StillHeld" || isRetryable(e)
        }),
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
