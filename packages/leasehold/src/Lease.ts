/**
 * Leases: locks with a time to live, proven by a random token, held in a `LeaseStore` (Redis or memory).
 *
 * The shortest real program holds a lease around one effect. The lease is renewed every TTL/3 while the effect
 * runs, released when it ends, and if it is lost the effect is interrupted before the lease can expire in the store,
 * and fails with a `LeaseError` whose reason is `LeaseLost`:
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { Lease, LeaseStore } from "leasehold"
 *
 * const job = Lease.withLease("jobs:nightly", "30 seconds", (lease) =>
 *   Effect.log(`running with fence ${lease.fence}`))
 *
 * const LeaseLive = Lease.layer.pipe(
 *   Layer.provide(LeaseStore.layerRedis({ prefix: "lease:" })),
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" })))
 *
 * Effect.runPromise(job.pipe(Effect.provide(LeaseLive)))
 * ```
 *
 * The seed's operations map one-to-one: `acquire` (never waits), `renew`, `release`, `checkOwnership`; plus
 * `inspect`, `scoped` and `withLease`.
 *
 * @since 0.1.0
 */
import { Cause, Context, Data, Deferred, Duration, Effect, Layer, Option, Result, type Schedule, Scope } from "effect"
import * as validate from "./internal/validate.ts"
import * as waitRoom from "./internal/waitRoom.ts"
import * as LeaseError from "./LeaseError.ts"
import * as LeaseKey from "./LeaseKey.ts"
import * as LeaseObserver from "./LeaseObserver.ts"
import type { LeaseOwner } from "./LeaseOwner.ts"
import * as LeaseStore from "./LeaseStore.ts"
import type { LeaseToken } from "./LeaseToken.ts"
import * as TokenSource from "./TokenSource.ts"

/**
 * The shortest TTL accepted for an auto-renewed lease (`scoped`, `withLease`): below it, a renew every TTL/3 leaves
 * too little time for a round trip and the safety margin.
 *
 * @category constants
 * @since 0.1.0
 */
export const minimumAutoRenewTtl: Duration.Duration = Duration.millis(100)

/**
 * The safety margin taken off a lease's TTL for its local validity deadline: 1% of the TTL plus 2 ms, for clock
 * rate differences between this process and the store.
 *
 * @category constants
 * @since 0.1.0
 */
export const driftMillis = (ttlMillis: number): number => ttlMillis * 0.01 + 2

/**
 * How long before a lease's `validUntil` an auto-renewed lease stops trying to renew and interrupts the work:
 * room for a late timer (Node's fire 1 to several milliseconds late) and for the interruption to land, so the work
 * stops before the lease can expire in the store. A tenth of the TTL, at most 10 ms.
 *
 * @category constants
 * @since 0.1.0
 */
export const reactionMillis = (ttlMillis: number): number => Math.min(10, ttlMillis / 10)

/**
 * A held lease (the seed's `Lease`): the key, the token that proves ownership, the TTL, the owner metadata, the
 * fence (a per-key counter that rises with every acquire, for protected resources to reject stale holders), the
 * store's time of acquisition, and `validUntil`, the local deadline (monotonic clock, milliseconds) after which the
 * holder must treat the lease as lost whatever the store says.
 *
 * The token is hidden from `toJSON` and `console.log`, so logging a handle does not leak it.
 *
 * @category models
 * @since 0.1.0
 */
export class Handle {
  readonly key: LeaseKey.LeaseKey
  readonly token: LeaseToken
  readonly ttl: Duration.Duration
  readonly owner: Option.Option<LeaseOwner>
  readonly fence: bigint
  readonly acquiredAt: Date
  readonly validUntil: number
  /** The id of the store that granted the lease. */
  readonly storeId: string

  constructor(fields: {
    readonly key: LeaseKey.LeaseKey
    readonly token: LeaseToken
    readonly ttl: Duration.Duration
    readonly owner: Option.Option<LeaseOwner>
    readonly fence: bigint
    readonly acquiredAt: Date
    readonly validUntil: number
    readonly storeId: string
  }) {
    this.key = fields.key
    this.token = fields.token
    this.ttl = fields.ttl
    this.owner = fields.owner
    this.fence = fields.fence
    this.acquiredAt = fields.acquiredAt
    this.validUntil = fields.validUntil
    this.storeId = fields.storeId
  }

  toJSON() {
    return {
      _tag: "Lease",
      key: this.key,
      token: "<redacted>",
      ttl: Duration.format(this.ttl),
      owner: Option.getOrUndefined(this.owner),
      fence: String(this.fence),
      acquiredAt: this.acquiredAt.toISOString()
    }
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return this.toJSON()
  }
}

/**
 * The outcome of one acquire attempt (the seed's `LeaseAttempt`): `Acquired` with the lease, or `Held` by another
 * token, with the time it has left and its owner metadata.
 *
 * @category models
 * @since 0.1.0
 */
export type LeaseAttempt = Data.TaggedEnum<{
  Acquired: { readonly lease: Handle }
  Held: {
    readonly key: LeaseKey.LeaseKey
    readonly remaining: Duration.Duration
    readonly owner: Option.Option<LeaseOwner>
  }
}>

/**
 * Constructors, guards (`$is`) and matching (`$match`) for `LeaseAttempt`.
 *
 * @category models
 * @since 0.1.0
 */
export const LeaseAttempt = Data.taggedEnum<LeaseAttempt>()

/**
 * What `inspect` sees of a held key: advisory, already stale when it arrives.
 *
 * @category models
 * @since 0.1.0
 */
export interface LeaseInfo {
  readonly key: LeaseKey.LeaseKey
  readonly owner: Option.Option<LeaseOwner>
  readonly remaining: Duration.Duration
  readonly fence: bigint
  readonly acquiredAt: Date
}

/**
 * A lease held by `scoped` for the life of a `Scope`, renewed in the background.
 * - `current`: the handle as of its latest renew (its `validUntil` moves on);
 * - `lost`: waits until the lease is lost and gives the reason; never completes while it is kept;
 * - `ensureValid`: fails with `LeaseLost` if the lease was lost or its local validity deadline has passed. Call it
 *   right before each protected side effect: after a pause of the whole process (a long GC, a blocked event loop)
 *   it refuses the step even before the renew fiber has had a chance to notice the loss.
 *
 * @category models
 * @since 0.1.0
 */
export interface Active {
  readonly key: LeaseKey.LeaseKey
  readonly fence: bigint
  readonly current: Effect.Effect<Handle>
  readonly lost: Effect.Effect<LeaseError.LeaseLost>
  readonly ensureValid: Effect.Effect<void, LeaseError.LeaseError>
}

/**
 * Options of a single acquire: owner metadata stored with the lease.
 *
 * @category models
 * @since 0.1.0
 */
export interface AcquireOptions {
  readonly owner?: LeaseOwner | undefined
}

/**
 * Options of an auto-renewed lease.
 * - `owner`: metadata stored with the lease.
 * - `wait`: how long to wait for a held key: a duration budget (`0` tries once), or a `Schedule` of retries.
 *   Default: up to the TTL. When it runs out the acquire fails with reason `AcquireTimeout`.
 * - `renewEvery`: the renew interval; default and maximum a third of the TTL.
 *
 * @category models
 * @since 0.1.0
 */
export interface ScopedOptions extends AcquireOptions {
  readonly wait?: Duration.Input | Schedule.Schedule<unknown, unknown> | undefined
  readonly renewEvery?: Duration.Input | undefined
}

/**
 * The lease service.
 *
 * @category services
 * @since 0.1.0
 */
export class Lease extends Context.Service<
  Lease,
  {
    /** Tries once to acquire `key` for `ttl` (SET NX PX semantics, one round trip); never waits. */
    readonly acquire: (
      key: string,
      ttl: Duration.Input,
      options?: AcquireOptions
    ) => Effect.Effect<LeaseAttempt, LeaseError.LeaseError>
    /** Extends a held lease to `ttl` (default: its own TTL); `None` when it is not held any more. */
    readonly renew: (lease: Handle, ttl?: Duration.Input) => Effect.Effect<Option.Option<Handle>, LeaseError.LeaseError>
    /** Releases a lease if its token still holds the key; `true` when it did. Idempotent. */
    readonly release: (lease: Handle) => Effect.Effect<boolean, LeaseError.LeaseError>
    /** Whether the lease's token still holds its key in the store. */
    readonly checkOwnership: (lease: Handle) => Effect.Effect<boolean, LeaseError.LeaseError>
    /** Who holds `key`, for how long, with which fence; advisory. */
    readonly inspect: (key: string) => Effect.Effect<Option.Option<LeaseInfo>, LeaseError.LeaseError>
    /** Acquires (waiting as `options.wait` says), renews in the background, releases when the scope closes. */
    readonly scoped: (
      key: string,
      ttl: Duration.Input,
      options?: ScopedOptions & { readonly interruptOnLoss?: boolean | undefined }
    ) => Effect.Effect<Active, LeaseError.LeaseError, Scope.Scope>
  }
>()("leasehold/Lease") {}

/** Reads the monotonic clock in milliseconds (TestClock moves it). */
const monotonicMillis = Effect.clockWith((clock) => Effect.sync(() => Number(clock.currentTimeNanosUnsafe()) / 1e6))

const fromResult = <A>(result: Result.Result<A, LeaseError.LeaseError>): Effect.Effect<A, LeaseError.LeaseError> =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)

/** Held: an internal failure that drives retries of a blocking acquire. */
class StillHeld extends Data.TaggedError("StillHeld")<{ readonly attempt: LeaseAttempt & { _tag: "Held" } }> {}

/**
 * Makes the lease service over the `LeaseStore` in context, with the `TokenSource` and `LeaseObserver` in context
 * (their defaults: CSPRNG tokens, no observer).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: Effect.Effect<Lease["Service"], never, LeaseStore.LeaseStore | Scope.Scope> = Effect.gen(
  function* () {
    const store = yield* LeaseStore.LeaseStore
    const tokens = yield* TokenSource.TokenSource
    const observer = yield* LeaseObserver.LeaseObserver

    const observe = (event: Effect.Effect<void>) => Effect.ignoreCause(event)
    const infoOf = (lease: Handle): LeaseObserver.LeaseInfo => ({
      key: lease.key,
      fence: lease.fence,
      ttl: lease.ttl,
      owner: lease.owner
    })
    const checkStore = (lease: Handle, operation: string) =>
      lease.storeId === store.id
        ? Effect.void
        : Effect.fail(LeaseError.make(new LeaseError.ForeignLease({ key: lease.key, operation })))
    const validKey = (key: string) => fromResult(LeaseKey.decode(key))

    /**
     * Undoes an acquire whose reply was lost but whose command may have landed. After an interruption the release
     * runs before the interruption completes (one bounded round trip), so the interrupter finds nothing locked; after
     * a store failure it runs in the background, so a failing store does not double the caller's wait.
     */
    const undoAcquire =
      (key: LeaseKey.LeaseKey, token: LeaseToken) =>
      <E>(cause: Cause.Cause<E>) => {
        const release = Effect.ignore(store.release(key, token))
        return Cause.hasInterrupts(cause) ? release : Effect.forkDetach(release)
      }

    /**
     * One acquire attempt with a fresh token. `onAcquired` runs uninterruptibly with the new lease, so a caller can
     * register its release before any interruption can land. If the attempt fails or is interrupted after the command
     * may have reached the store, the token is released (`undoAcquire`), so nothing stays locked.
     */
    const attempt = (
      key: LeaseKey.LeaseKey,
      ttlMillis: number,
      owner: { readonly text: string | undefined; readonly value: Option.Option<LeaseOwner> },
      onAcquired: (lease: Handle) => Effect.Effect<void>
    ): Effect.Effect<LeaseAttempt, LeaseError.LeaseError> =>
      Effect.flatMap(tokens.newToken, (token) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(monotonicMillis, (t0) =>
            restore(store.acquire(key, token, ttlMillis, owner.text)).pipe(
              Effect.onError(undoAcquire(key, token)),
              Effect.flatMap((reply): Effect.Effect<LeaseAttempt> => {
                if (reply._tag === "Held") {
                  const held = LeaseAttempt.Held({
                    key,
                    remaining: Duration.millis(reply.remainingMillis),
                    owner: Option.fromUndefinedOr(validate.parseOwner(reply.owner))
                  })
                  return Effect.as(
                    observe(observer.contended({ key, remaining: held.remaining, holder: held.owner })),
                    held
                  )
                }
                const lease = new Handle({
                  key,
                  token,
                  ttl: Duration.millis(ttlMillis),
                  owner: owner.value,
                  fence: reply.fence,
                  acquiredAt: new Date(reply.acquiredAt),
                  validUntil: t0 + ttlMillis - driftMillis(ttlMillis),
                  storeId: store.id
                })
                return onAcquired(lease).pipe(
                  Effect.andThen(observe(observer.acquired(infoOf(lease)))),
                  Effect.as(LeaseAttempt.Acquired({ lease }))
                )
              })
            )
          )
        )
      )

    const ownerOf = (owner: LeaseOwner | undefined) =>
      Effect.map(fromResult(validate.encodeOwner(owner)), (text) => ({
        text,
        value: text === undefined ? Option.none<LeaseOwner>() : Option.some(owner as LeaseOwner)
      }))

    const acquire = Effect.fn("Lease.acquire")(function* (key: string, ttl: Duration.Input, options?: AcquireOptions) {
      const validatedKey = yield* validKey(key)
      const ttlMillis = yield* fromResult(validate.ttlMillis(ttl, 1, "for a lease"))
      const owner = yield* ownerOf(options?.owner)
      return yield* attempt(validatedKey, ttlMillis, owner, () => Effect.void)
    })

    const renew = Effect.fn("Lease.renew")(function* (lease: Handle, ttl?: Duration.Input) {
      yield* checkStore(lease, "renew")
      const ttlMillis = yield* fromResult(validate.ttlMillis(ttl ?? lease.ttl, 1, "for a lease"))
      const t0 = yield* monotonicMillis
      const reply = yield* store.renew(lease.key, lease.token, ttlMillis)
      if (reply !== "renewed") {
        yield* observe(observer.lost(infoOf(lease), reply))
        return Option.none<Handle>()
      }
      const renewed = new Handle({
        ...lease,
        ttl: Duration.millis(ttlMillis),
        validUntil: t0 + ttlMillis - driftMillis(ttlMillis)
      })
      yield* observe(observer.renewed(infoOf(renewed)))
      return Option.some(renewed)
    })

    const release = Effect.fn("Lease.release")(function* (lease: Handle) {
      yield* checkStore(lease, "release")
      const wasHeld = yield* store
        .release(lease.key, lease.token)
        .pipe(Effect.tapError((error) => observe(observer.releaseFailed(infoOf(lease), error))))
      yield* observe(observer.released(infoOf(lease), wasHeld))
      return wasHeld
    })

    const checkOwnership = Effect.fn("Lease.checkOwnership")(function* (lease: Handle) {
      yield* checkStore(lease, "check ownership of")
      return yield* store.isHeld(lease.key, lease.token)
    })

    const inspect = Effect.fn("Lease.inspect")(function* (key: string) {
      const validatedKey = yield* validKey(key)
      const snapshot = yield* store.inspect(validatedKey)
      return Option.map(
        snapshot,
        (s): LeaseInfo => ({
          key: validatedKey,
          owner: Option.fromUndefinedOr(validate.parseOwner(s.owner)),
          remaining: Duration.millis(s.remainingMillis),
          fence: s.fence,
          acquiredAt: new Date(s.acquiredAt)
        })
      )
    })

    const room = waitRoom.make<Option.Option<LeaseOwner>>()
    const layerScope = yield* Effect.scope
    const unwatched: LeaseStore.ReleaseWatch = { healthy: () => false }
    let watching: Deferred.Deferred<LeaseStore.ReleaseWatch> | undefined

    /**
     * The store's release notifications, opened once for the life of the layer (one subscription per process and
     * store, shared by every waiter) when the first waiter needs them. If they cannot be opened, waiters poll, and the
     * next waiter tries to open them again.
     */
    const releaseWatch = Effect.suspend(() => {
      if (watching !== undefined) return Deferred.await(watching)
      const opened = Deferred.makeUnsafe<LeaseStore.ReleaseWatch>()
      watching = opened
      const open = store.watchReleases(room.notify).pipe(
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

    const timedOut = (key: LeaseKey.LeaseKey, waitedMillis: number, holder: Option.Option<LeaseOwner> | undefined) =>
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
     * Waits for a held key in this process's queue for it: first come, first served. Only the head sends commands:
     * it tries, and when the key is held it sleeps until a release is announced, or until the holder's lease would
     * expire (a crashed holder), or, when the announcements are not heard, a jittered safety-net delay.
     */
    const waitInQueue = (
      key: LeaseKey.LeaseKey,
      ttlMillis: number,
      owner: { readonly text: string | undefined; readonly value: Option.Option<LeaseOwner> },
      budgetMillis: number,
      onAcquired: (lease: Handle) => Effect.Effect<void>
    ): Effect.Effect<Handle, LeaseError.LeaseError> =>
      Effect.scoped(
        Effect.gen(function* () {
          const start = yield* monotonicMillis
          if (!room.hasWaiters(key)) {
            const first = yield* attempt(key, ttlMillis, owner, onAcquired)
            if (first._tag === "Acquired") return first.lease
            if (budgetMillis === 0) return yield* timedOut(key, 0, first.owner)
          }
          // Listen before the next try, so that a release between that try and the sleep after it is not missed.
          const watch = yield* releaseWatch
          const ticket = yield* room.join(key)
          let probe = ticket.isHead()
          let fallbackMillis = Number.POSITIVE_INFINITY
          let safetyNetMillis = 100
          while (true) {
            if (probe && ticket.isHead()) {
              const result = yield* attempt(key, ttlMillis, owner, onAcquired)
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
      key: LeaseKey.LeaseKey,
      ttlMillis: number,
      owner: { readonly text: string | undefined; readonly value: Option.Option<LeaseOwner> },
      wait: validate.WaitPolicy,
      onAcquired: (lease: Handle) => Effect.Effect<void>
    ): Effect.Effect<Handle, LeaseError.LeaseError> => {
      if (wait._tag === "Budget") return waitInQueue(key, ttlMillis, owner, wait.millis, onAcquired)
      return Effect.flatMap(monotonicMillis, (start) =>
        attempt(key, ttlMillis, owner, onAcquired).pipe(
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

    /** Final release of an auto-renewed lease: bounded by the store, reported, never failing the scope. */
    const finalRelease = (lease: Handle) =>
      store.release(lease.key, lease.token).pipe(
        Effect.matchEffect({
          onSuccess: (wasHeld) => observe(observer.released(infoOf(lease), wasHeld)),
          onFailure: (error) =>
            Effect.andThen(
              observe(observer.releaseFailed(infoOf(lease), error)),
              Effect.logWarning("leasehold: release failed; the lease will expire at its TTL", error.message).pipe(
                Effect.annotateLogs({ leaseKey: lease.key, fence: String(lease.fence) })
              )
            )
        })
      )

    /**
     * Renews every `intervalMillis` (measured from the start of the last successful renew). Each attempt is bounded
     * by the lease's validity deadline less the reaction time; a failed attempt is retried until then. On a definite
     * "not held" or at that deadline, the loss is published and `onLost` runs.
     */
    const keepRenewed = (
      first: Handle,
      intervalMillis: number,
      update: (lease: Handle) => void,
      lost: Deferred.Deferred<LeaseError.LeaseLost>,
      onLost: Effect.Effect<void>
    ) =>
      Effect.gen(function* () {
        const ttlMillis = Duration.toMillis(first.ttl)
        const margin = ttlMillis - driftMillis(ttlMillis)
        const reaction = reactionMillis(ttlMillis)
        let lease = first
        const lose = (reason: LeaseError.LostBecause) =>
          Effect.gen(function* () {
            yield* observe(observer.lost(infoOf(lease), reason))
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
              yield* observe(observer.renewed(infoOf(lease)))
              break
            }
            yield* observe(observer.renewFailed(infoOf(lease), reply.failure))
            const retryIn = Math.min(10 * 2 ** failures, intervalMillis / 2, deadline - (yield* monotonicMillis))
            if (retryIn > 0) yield* Effect.sleep(Duration.millis(Math.ceil(retryIn)))
          }
        }
      })

    const scoped = Effect.fn("Lease.scoped")(function* (
      key: string,
      ttl: Duration.Input,
      options?: ScopedOptions & { readonly interruptOnLoss?: boolean | undefined }
    ) {
      const validatedKey = yield* validKey(key)
      const ttlMillis = yield* fromResult(
        validate.ttlMillis(ttl, Duration.toMillis(minimumAutoRenewTtl), "for an auto-renewed lease")
      )
      const intervalMillis = yield* fromResult(validate.renewEveryMillis(options?.renewEvery, ttlMillis))
      const wait = yield* fromResult(validate.waitPolicy(options?.wait, ttlMillis))
      const owner = yield* ownerOf(options?.owner)
      const scope = yield* Effect.scope
      const holder = yield* Effect.fiber
      const lease = yield* acquireWaiting(validatedKey, ttlMillis, owner, wait, (lease) =>
        Scope.addFinalizer(scope, finalRelease(lease))
      )
      let current = lease
      const lost = yield* Deferred.make<LeaseError.LeaseLost>()
      const onLost = options?.interruptOnLoss === false ? Effect.void : Effect.sync(() => holder.interruptUnsafe())
      yield* Effect.forkIn(
        keepRenewed(lease, intervalMillis, (renewed) => (current = renewed), lost, onLost),
        scope
      )
      const ensureValid = Effect.flatMap(monotonicMillis, (now) => {
        if (Deferred.isDoneUnsafe(lost))
          return Effect.flatMap(Deferred.await(lost), (l) => Effect.fail(LeaseError.make(l)))
        if (now < current.validUntil) return Effect.void
        return Effect.fail(
          LeaseError.make(new LeaseError.LeaseLost({ key: validatedKey, reason: "expired", fence: lease.fence }))
        )
      })
      return identity<Active>({
        key: validatedKey,
        fence: lease.fence,
        current: Effect.sync(() => current),
        lost: Deferred.await(lost),
        ensureValid
      })
    })

    return Lease.of({ acquire, renew, release, checkOwnership, inspect, scoped })
  }
)

const identity = <A>(a: A): A => a

/**
 * The lease service over the `LeaseStore` layer it is given (`LeaseStore.layerRedis` or `LeaseStore.layerMemory`).
 * Provide `TokenSource.layer` or `LeaseObserver.layer…` to it to change those.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Lease, never, LeaseStore.LeaseStore> = Layer.effect(Lease, make)

/**
 * Tries once to acquire `key` for `ttl`: `Acquired` with the lease, or `Held` by someone else. Never waits.
 *
 * ```ts
 * const attempt = yield* Lease.acquire("jobs:nightly", "30 seconds", { owner: { id: "worker-1" } })
 * if (attempt._tag === "Acquired") yield* Lease.release(attempt.lease)
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const acquire = (
  key: string,
  ttl: Duration.Input,
  options?: AcquireOptions
): Effect.Effect<LeaseAttempt, LeaseError.LeaseError, Lease> => Lease.use((lease) => lease.acquire(key, ttl, options))

/**
 * Extends a held lease to `ttl` (default: the lease's own TTL). `None` when the lease is not held any more.
 *
 * @category operations
 * @since 0.1.0
 */
export const renew = (
  lease: Handle,
  ttl?: Duration.Input
): Effect.Effect<Option.Option<Handle>, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.renew(lease, ttl))

/**
 * Releases a lease if its token still holds the key; `true` when it did, `false` when it was not held any more.
 * Idempotent, and only the owner's token can release.
 *
 * @category operations
 * @since 0.1.0
 */
export const release = (lease: Handle): Effect.Effect<boolean, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.release(lease))

/**
 * Whether the lease's token still holds its key in the store.
 *
 * @category operations
 * @since 0.1.0
 */
export const checkOwnership = (lease: Handle): Effect.Effect<boolean, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.checkOwnership(lease))

/**
 * Who holds `key`, for how long and with which fence; `None` when nobody does. Advisory: it is stale on arrival.
 *
 * @category operations
 * @since 0.1.0
 */
export const inspect = (key: string): Effect.Effect<Option.Option<LeaseInfo>, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.inspect(key))

/**
 * Holds `key` for the life of the current `Scope`: waits for it (as `options.wait` says), renews it every
 * `renewEvery` (default TTL/3), and releases it when the scope closes (after stopping the renewals). If the lease is
 * lost, the fiber that acquired it is interrupted, and `lost` gives the reason.
 *
 * ```ts
 * Effect.scoped(Effect.gen(function* () {
 *   const lease = yield* Lease.scoped("jobs:nightly", "30 seconds")
 *   yield* doWork(lease.fence)
 * }))
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const scoped = (
  key: string,
  ttl: Duration.Input,
  options?: ScopedOptions
): Effect.Effect<Active, LeaseError.LeaseError, Lease | Scope.Scope> =>
  Lease.use((service) => service.scoped(key, ttl, options))

/**
 * Runs `effect` while holding `key`: waits for the lease, renews it while the effect runs, releases it afterwards.
 * If the lease is lost, the effect is interrupted before the lease can expire in the store, and the result is a
 * `LeaseError` with reason `LeaseLost`. A failed release never replaces the effect's own result.
 *
 * `effect` may be a function of the held lease, to use its fence:
 *
 * ```ts
 * Lease.withLease("reports", "10 seconds", (lease) => writeReport({ fence: lease.fence }))
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const withLease = <A, E, R>(
  key: string,
  ttl: Duration.Input,
  effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>),
  options?: ScopedOptions
): Effect.Effect<A, E | LeaseError.LeaseError, R | Lease> =>
  Effect.scoped(
    Effect.flatMap(
      Lease.use((service) => service.scoped(key, ttl, { ...options, interruptOnLoss: false })),
      (active) =>
        Effect.raceFirst(
          typeof effect === "function" ? effect(active) : effect,
          Effect.flatMap(active.lost, (lost) => Effect.fail(LeaseError.make(lost)))
        )
    )
  )
