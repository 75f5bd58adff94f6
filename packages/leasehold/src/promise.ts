/**
 * leasehold for Promise code (`leasehold/promise`): the same leases, renewals, fences and errors as the Effect API,
 * without writing Effect.
 *
 * ```ts
 * import { connect } from "leasehold/promise"
 *
 * const leases = await connect({ url: "redis://127.0.0.1:6379" }) // or { memory: true }
 * const report = await leases.withLease("jobs:nightly", 30_000, async (lease) => {
 *   // renewed every 10 s while this runs; lease.signal is aborted before the lease could expire
 *   return `ran with fence ${lease.fence}, aborted: ${lease.signal.aborted}`
 * })
 * await leases.close()
 * ```
 *
 * Connecting to Redis needs the optional peers `@effect/platform-node` and `redis`; `{ memory: true }` needs
 * neither. Every rejection of leasehold's own is a `LeaseError` (match on `error.reason._tag`), the same instances
 * as Effect code sees.
 *
 * @since 0.1.0
 */
import { type Context, type Duration, Effect, Exit, type LogLevel, ManagedRuntime, Option, type Redacted } from "effect"
import { memoryPlan, type Plan, redisPlan } from "./internal/promiseConnect.ts"
import { CallbackRejection, closedError, interruptedError, rejectionOf, settle } from "./internal/promiseExit.ts"
import * as Lease from "./Lease.ts"
import * as LeaseError from "./LeaseError.ts"
import type { LeaseOwner } from "./LeaseOwner.ts"

/**
 * The Effect API's values, as the operations here take and give them: a held lease (`Handle`), the outcome of one
 * `acquire` (`LeaseAttempt`), what `inspect` sees (`LeaseInfo`) and the options of `acquire` (`AcquireOptions`).
 *
 * @category models
 * @since 0.1.0
 */
export type { AcquireOptions, Handle, LeaseAttempt, LeaseInfo } from "./Lease.ts"

/**
 * The one error of leasehold (the same class as `LeaseError.LeaseError` of `leasehold`) and its guard:
 * `if (error instanceof LeaseError && error.reason._tag === "AcquireTimeout") …`.
 *
 * @category errors
 * @since 0.1.0
 */
export { isLeaseError, LeaseError } from "./LeaseError.ts"

/**
 * A duration: a number of milliseconds (`30_000`) or a duration string (`"30 seconds"`, `"500 millis"`).
 *
 * ```ts
 * const ttl: DurationInput = "30 seconds"
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type DurationInput = number | `${number} ${Duration.Unit}`

/**
 * Options of `connect` for a Redis server.
 * - `url`: `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). Credentials may be given here or as
 *   `username`/`password` (a `Redacted` password stays out of logs and inspection); they never appear in messages.
 * - `prefix` (default `"lease:"`): put before each key in Redis.
 * - `commandTimeout` (default 2 s): the bound on each command, and (plus 1 s) on a graceful `close`.
 * - `connectTimeout` (default 5 s): how long `connect` waits for Redis to accept the connection and answer.
 * - `logLevel`: the lowest level of leasehold's and the client's log lines (default `"Info"`; `"None"` for none).
 *
 * ```ts
 * const leases = await connect({ url: "redis://127.0.0.1:6379", password: Redacted.make(secret), commandTimeout: 500 })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface RedisConnectOptions {
  readonly url: string
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  readonly prefix?: string | undefined
  readonly commandTimeout?: DurationInput | undefined
  readonly connectTimeout?: DurationInput | undefined
  readonly logLevel?: LogLevel.LogLevel | undefined
}

/**
 * Options of `connect` for the memory store: leases within one `Leases` of this process (for tests, or one process
 * that needs leases among its own tasks). Two `connect({ memory: true })` do not share leases.
 *
 * ```ts
 * const leases = await connect({ memory: true })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface MemoryConnectOptions {
  readonly memory: true
  readonly logLevel?: LogLevel.LogLevel | undefined
}

/**
 * Options of `connect`: a Redis server (`{ url }`), or the memory store (`{ memory: true }`).
 *
 * @category models
 * @since 0.1.0
 */
export type ConnectOptions = RedisConnectOptions | MemoryConnectOptions

/**
 * Options of `withLease`, as in the Effect API.
 * - `wait` (default: up to the TTL): how long to wait for a key that someone else holds; `0` tries once. When it
 *   runs out, `withLease` rejects with a `LeaseError` whose reason is `AcquireTimeout`.
 * - `owner`: metadata stored with the lease, shown by `inspect` and in others' `AcquireTimeout`.
 * - `renewEvery` (default and maximum: a third of the TTL): the renew interval.
 *
 * ```ts
 * await leases.withLease("jobs:nightly", "30 seconds", run, { wait: 0, owner: { id: "worker-1" }, renewEvery: 5_000 })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface WithLeaseOptions {
  readonly wait?: DurationInput | undefined
  readonly owner?: LeaseOwner | undefined
  readonly renewEvery?: DurationInput | undefined
}

/**
 * The lease a `withLease` callback runs under.
 * - `key`, `fence`: the key and the lease's fence (it rises with every acquire of the key: hand it to a protected
 *   resource so that it can refuse a stale holder);
 * - `signal`: aborted when the lease is lost (its `reason` is the `LeaseError`, reason `LeaseLost`), before the lease
 *   can expire in Redis, or when `close()` stops the hold (a plain `Error`). The callback must honour it: from then
 *   on it no longer holds the lease, and `withLease` has already rejected;
 * - `ensureValid()`: rejects with that `LeaseError` once the lease is lost or its local validity deadline has
 *   passed. Await it right before each protected side effect.
 *
 * ```ts
 * await leases.withLease("ledger", 10_000, async (lease) => {
 *   for (const entry of entries) {
 *     await lease.ensureValid()
 *     await ledger.write(entry, { fence: lease.fence, signal: lease.signal })
 *   }
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Active {
  readonly key: string
  readonly fence: bigint
  readonly signal: AbortSignal
  readonly ensureValid: () => Promise<void>
}

/**
 * A connection to a lease store (see `connect`). Each operation is the Effect API's of the same name; they are
 * closures, so they may be passed around detached (`const { withLease } = leases`).
 *
 * ```ts
 * const leases = await connect({ url: "redis://127.0.0.1:6379" })
 * const info = await leases.inspect("jobs:nightly")
 * await leases.close()
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Leases {
  /**
   * Runs `fn` while holding `key`: waits for the lease (as `options.wait` says), renews it every TTL/3 while `fn`
   * runs, releases it when `fn` settles, and resolves with what `fn` resolved with. A rejection of `fn` is passed
   * through as it was thrown. If the lease is lost, `lease.signal` is aborted and `withLease` rejects at once with
   * the `LeaseError` (reason `LeaseLost`), while `fn` may still be running: it must stop on the signal.
   *
   * ```ts
   * const done = await leases.withLease("reports", "10 seconds", (lease) => writeReport(lease.fence, lease.signal), {
   *   wait: 0
   * })
   * ```
   */
  readonly withLease: <A>(
    key: string,
    ttl: DurationInput,
    fn: (lease: Active) => PromiseLike<A> | A,
    options?: WithLeaseOptions
  ) => Promise<A>
  /**
   * Tries once to acquire `key` for `ttl` (no waiting, no renewing): `{ _tag: "Acquired", lease }` or
   * `{ _tag: "Held", key, remaining, owner }` when someone else holds it.
   *
   * ```ts
   * const attempt = await leases.acquire("jobs:nightly", 30_000)
   * if (attempt._tag === "Acquired") await leases.release(attempt.lease)
   * ```
   */
  readonly acquire: (key: string, ttl: DurationInput, options?: Lease.AcquireOptions) => Promise<Lease.LeaseAttempt>
  /** Extends a held lease to `ttl` (default: its own TTL): the renewed handle, or `undefined` when it is not held. */
  readonly renew: (lease: Lease.Handle, ttl?: DurationInput) => Promise<Lease.Handle | undefined>
  /** Releases a lease if its token still holds the key: `true` when it did. Idempotent. */
  readonly release: (lease: Lease.Handle) => Promise<boolean>
  /** Whether the lease's token still holds its key. */
  readonly checkOwnership: (lease: Lease.Handle) => Promise<boolean>
  /** Who holds `key`, for how long, with which fence; `undefined` when nobody does. Advisory: stale on arrival. */
  readonly inspect: (key: string) => Promise<Lease.LeaseInfo | undefined>
  /**
   * Stops every operation still running (their holds are released, their signals aborted), then closes the
   * connection. Bounded: when Redis does not answer, the connection is destroyed after the command timeout plus
   * 1 s. It always resolves; calling it again returns the same Promise, and other operations reject afterwards.
   */
  readonly close: () => Promise<void>
  /** `close()`, for `await using leases = await connect(…)`. */
  readonly [Symbol.asyncDispose]: () => Promise<void>
}

/**
 * Connects to Redis (`{ url }`) or makes a memory store (`{ memory: true }`) and resolves with its `Leases`. Rejects
 * with a `LeaseError`: reason `StoreUnavailable` when Redis cannot be reached (its message names the host and port,
 * never credentials), `InvalidOption` for a URL that is not `redis://` or `rediss://`.
 *
 * ```ts
 * const leases = await connect({ url: "redis://127.0.0.1:6379", prefix: "myapp:lease:" })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const connect = async (options: ConnectOptions): Promise<Leases> => {
  const plan =
    "memory" in options && options.memory === true
      ? memoryPlan(options.logLevel)
      : await redisPlan(options as RedisConnectOptions)
  const runtime = ManagedRuntime.make(plan.layer)
  const built = await Effect.runPromiseExit(Effect.timeoutOption(runtime.contextEffect, plan.connectBoundMillis))
  if (Exit.isSuccess(built) && Option.isSome(built.value)) return makeLeases(runtime, plan, built.value.value)
  if (Exit.isSuccess(built)) {
    // The connection that never answered cannot be reached to destroy it: it closes when Redis answers or the
    // socket ends.
    void runtime.dispose()
    throw plan.connectTimedOut()
  }
  await closeWithin(runtime, plan.closeBoundMillis, () => {})
  const error = Option.getOrUndefined(Exit.findErrorOption(built))
  throw error === undefined ? rejectionOf("connect", built.cause) : plan.connectFailed(error)
}

/** Closes `runtime` within `boundMillis`; past that, `force` ends its connections and the close gets 1 s more. */
const closeWithin = async (
  runtime: ManagedRuntime.ManagedRuntime<never, unknown>,
  boundMillis: number,
  force: () => void
): Promise<void> => {
  const disposed = runtime.dispose().then(
    () => true,
    () => true
  )
  if (await within(disposed, boundMillis)) return
  force()
  await within(disposed, 1_000)
}

/** Whether `promise` settles within `millis`. */
const within = (promise: Promise<boolean>, millis: number): Promise<boolean> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), millis)
  })
  return Promise.race([promise, timedOut]).finally(() => clearTimeout(timer))
}

/**
 * The `Leases` of one runtime. Its operations are closures, not methods, so they can be passed around detached
 * (`const { withLease } = leases`).
 */
const makeLeases = (
  runtime: ManagedRuntime.ManagedRuntime<Lease.Lease, unknown>,
  plan: Plan,
  context: Context.Context<never>
): Leases => {
  let closing: Promise<void> | undefined

  const run = <A, E>(operation: string, effect: Effect.Effect<A, E, Lease.Lease>): Promise<A> => {
    if (closing !== undefined) return Promise.reject(closedError(operation))
    return new Promise<A>((resolve, reject) => {
      runtime.runPromiseExit(effect).then((exit) => settle(operation, exit, resolve, reject))
    })
  }

  const withLease = <A>(
    key: string,
    ttl: DurationInput,
    fn: (lease: Active) => PromiseLike<A> | A,
    options?: WithLeaseOptions
  ): Promise<A> => {
    if (closing !== undefined) return Promise.reject(closedError("withLease"))
    return new Promise<A>((resolve, reject) => {
      let settled = false
      // The LeaseError the signal was aborted with: the rejection on a loss, so that `signal.reason` is it.
      let lostWith: LeaseError.LeaseError | undefined
      const rejectOnce = (error: unknown) => {
        if (settled) return
        settled = true
        reject(error)
      }
      const work = (active: Lease.Active) =>
        Effect.callback<A, CallbackRejection>((resume) => {
          const controller = new AbortController()
          new Promise<A>((fulfil) => fulfil(fn(makeActive(active, controller.signal)))).then(
            (value) => resume(Effect.succeed(value)),
            (thrown) => resume(Effect.fail(new CallbackRejection(thrown)))
          )
          // Interrupted: by the renewer when the lease is lost (then `ensureValid` fails with the loss), or by close.
          return Effect.map(Effect.exit(active.ensureValid), (valid) => {
            const loss = Exit.isFailure(valid) ? Option.getOrUndefined(Exit.findErrorOption(valid)) : undefined
            if (loss === undefined) return controller.abort(interruptedError("withLease"))
            lostWith = loss
            controller.abort(loss)
            // At once: the hold's release may wait for a Redis that does not answer; the runtime finishes it.
            rejectOnce(loss)
          })
        })
      const hold = Lease.withLease(key, ttl, work, {
        wait: options?.wait,
        owner: options?.owner,
        renewEvery: options?.renewEvery
      })
      runtime
        .runPromiseExit(hold)
        .then((exit) =>
          settle("withLease", exit, resolve, (error) =>
            rejectOnce(
              lostWith !== undefined && LeaseError.isLeaseError(error) && error.reason === lostWith.reason
                ? lostWith
                : error
            )
          )
        )
    })
  }

  const close = (): Promise<void> => {
    closing ??= closeWithin(runtime, plan.closeBoundMillis, () => plan.forceClose(context))
    return closing
  }

  return {
    withLease,
    acquire: (key, ttl, options) => run("acquire", Lease.acquire(key, ttl, options)),
    renew: (lease, ttl) => run("renew", Effect.map(Lease.renew(lease, ttl), Option.getOrUndefined)),
    release: (lease) => run("release", Lease.release(lease)),
    checkOwnership: (lease) => run("checkOwnership", Lease.checkOwnership(lease)),
    inspect: (key) => run("inspect", Effect.map(Lease.inspect(key), Option.getOrUndefined)),
    close,
    [Symbol.asyncDispose]: close
  }
}

/** The `Active` handed to a `withLease` callback, over the Effect API's `Active` of the hold. */
const makeActive = (active: Lease.Active, signal: AbortSignal): Active => ({
  key: active.key,
  fence: active.fence,
  signal,
  ensureValid: () => {
    // After a loss, the same LeaseError as the signal's reason and the rejection of `withLease`.
    if (signal.aborted) return Promise.reject(signal.reason)
    return new Promise<void>((resolve, reject) => {
      Effect.runPromiseExit(active.ensureValid).then((exit) => settle("ensureValid", exit, resolve, reject))
    })
  }
})
