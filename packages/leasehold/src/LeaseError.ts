/**
 * The one error type of leasehold: a `LeaseError` whose `reason` says what went wrong and carries what a caller
 * needs to act on it.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Lease } from "leasehold"
 *
 * const job = Lease.withLease("jobs:nightly", "30 seconds", Effect.log("working")).pipe(
 *   Effect.catchReason("LeaseError", "AcquireTimeout", (timeout) => Effect.log(`busy, held by ${timeout.holder?.id}`))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Predicate, Schema } from "effect"
import { LeaseOwner } from "./LeaseOwner.ts"

/**
 * The key that marks a `LeaseError`: a string, so two copies of leasehold in one program (two versions, or one
 * bundled twice) recognise each other's errors, where `instanceof` would not.
 */
const TypeId = "~leasehold/LeaseError" as const

/** The key that marks a reason of a `LeaseError`, for the same purpose. */
const ReasonTypeId = "~leasehold/LeaseError/Reason" as const

/** Quotes user input for a message: at most 80 characters, every control character escaped (so it shows). */
const quote = (input: string): string =>
  JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

/**
 * A lease key that cannot be used: empty, longer than 512 characters, or holding control characters.
 *
 * @category reasons
 * @since 0.1.0
 */
export class InvalidKey extends Schema.TaggedError<InvalidKey>("leasehold/LeaseError/InvalidKey")("InvalidKey", {
  key: Schema.String,
  problem: Schema.String
}) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the same key fails the same way; fix the input. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `Invalid lease key ${quote(this.key)}: ${this.problem}. A key is 1 to 512 characters without control characters.`
  }
}

/**
 * A TTL (or another duration option) that cannot be used: zero, negative, NaN, infinite, not whole milliseconds,
 * or too short to renew automatically.
 *
 * @category reasons
 * @since 0.1.0
 */
export class InvalidTtl extends Schema.TaggedError<InvalidTtl>("leasehold/LeaseError/InvalidTtl")("InvalidTtl", {
  ttl: Schema.String,
  problem: Schema.String
}) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the same TTL fails the same way; fix the input. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `Invalid lease TTL ${this.ttl}: ${this.problem}.`
  }
}

/**
 * A token that does not have the shape of a lease token (16 to 256 characters of `[A-Za-z0-9._~:-]`). The token
 * itself is never put in the message: it is a secret proof of ownership.
 *
 * @category reasons
 * @since 0.1.0
 */
export class InvalidToken extends Schema.TaggedError<InvalidToken>("leasehold/LeaseError/InvalidToken")(
  "InvalidToken",
  {
    problem: Schema.String
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the token source makes malformed tokens; fix it. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `Invalid lease token: ${this.problem}. A token is 16 to 256 characters of [A-Za-z0-9._~:-].`
  }
}

/**
 * Owner metadata that does not decode as a `LeaseOwner`.
 *
 * @category reasons
 * @since 0.1.0
 */
export class InvalidOwner extends Schema.TaggedError<InvalidOwner>("leasehold/LeaseError/InvalidOwner")(
  "InvalidOwner",
  {
    problem: Schema.String
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the same metadata fails the same way; fix the input. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `Invalid lease owner: ${this.problem}.`
  }
}

/**
 * An option with a value that cannot be honoured, such as `renewEvery` above a third of the TTL.
 *
 * @category reasons
 * @since 0.1.0
 */
export class InvalidOption extends Schema.TaggedError<InvalidOption>("leasehold/LeaseError/InvalidOption")(
  "InvalidOption",
  {
    option: Schema.String,
    problem: Schema.String
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the same options fail the same way; fix the input. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `Invalid lease option "${this.option}": ${this.problem}.`
  }
}

/**
 * A lease handed to a store other than the one that granted it (another layer, another store instance), or a handle
 * leasehold did not make (a copy, or one built by hand). Renewing or releasing it there would act on a lock the
 * caller does not hold.
 *
 * @category reasons
 * @since 0.1.0
 */
export class ForeignLease extends Schema.TaggedError<ForeignLease>("leasehold/LeaseError/ForeignLease")(
  "ForeignLease",
  {
    key: Schema.String,
    operation: Schema.String
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the handle belongs to another store; use the service that acquired it. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `Cannot ${this.operation} the lease on ${quote(this.key)}: it was not acquired through this lease store (it comes from another store, or is a copy of a handle). Use the Lease service that acquired it, with the handle it returned.`
  }
}

/**
 * A blocking acquire whose wait budget ran out while another holder kept the key.
 *
 * @category reasons
 * @since 0.1.0
 */
export class AcquireTimeout extends Schema.TaggedError<AcquireTimeout>("leasehold/LeaseError/AcquireTimeout")(
  "AcquireTimeout",
  {
    key: Schema.String,
    waited: Schema.Duration,
    holder: Schema.optional(LeaseOwner)
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `true`: the holder may release or expire; a later acquire may get the lease. */
  get isRetryable(): boolean {
    return true
  }

  override get message(): string {
    const holder = this.holder === undefined ? "another holder" : `holder ${JSON.stringify(this.holder.id)}`
    return Duration.isZero(this.waited)
      ? `The lease on ${quote(this.key)} is held by ${holder} (tried once, wait: 0). Retry later, or pass a "wait" to wait for it.`
      : `Timed out after ${Duration.format(this.waited)} waiting for the lease on ${quote(this.key)}, held by ${holder}. Wait longer (the "wait" option) or retry later.`
  }
}

/**
 * A blocking acquire (`hold`, `withLease`) of a key that the calling fiber already holds through the same `Lease`
 * service, itself or through a fiber it was forked from. Leases are not reentrant: waiting would wait for itself
 * until the budget ran out. A single `acquire`, which never waits, answers `Held` instead.
 *
 * @category reasons
 * @since 0.1.0
 */
export class ReentrantAcquire extends Schema.TaggedError<ReentrantAcquire>("leasehold/LeaseError/ReentrantAcquire")(
  "ReentrantAcquire",
  {
    key: Schema.String,
    fence: Schema.BigInt
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `false`: the key stays held by the caller as long as it waits; acquiring it again never succeeds. */
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    return `The lease on ${quote(this.key)} is already held (fence ${this.fence}) by this fiber or a fiber it was forked from, through the same Lease service. Leases are not reentrant: waiting for it would wait for itself. Pass the held lease down to the code that needs it instead of acquiring the key again, or use another key.`
  }
}

/**
 * Why a held lease was lost, one value per condition whoever notices it (the renewer or `ensureValid`):
 * - `expired`: the lease was gone from the store (its TTL ran out before a renew landed);
 * - `stolen`: another token holds the key now;
 * - `store-unavailable`: no renew was confirmed before the local validity deadline (the store was unreachable or
 *   slow, or this process was paused).
 *
 * @category reasons
 * @since 0.1.0
 */
export const LostBecause = Schema.Literals(["expired", "stolen", "store-unavailable"])

/**
 * @category reasons
 * @since 0.1.0
 */
export type LostBecause = typeof LostBecause.Type

/**
 * A held lease that was lost while work ran under it. The work was interrupted before the lease could expire in the
 * store; the `fence` identifies the holder that lost it.
 *
 * @category reasons
 * @since 0.1.0
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("leasehold/LeaseError/LeaseLost")("LeaseLost", {
  key: Schema.String,
  because: LostBecause,
  fence: Schema.BigInt
}) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `true`: a new acquire may get the lease again, with a new fence. Whether the interrupted work may run again is the caller's to know. */
  get isRetryable(): boolean {
    return true
  }

  override get message(): string {
    const why = {
      expired: "it expired in the store before a renew landed",
      stolen: "another holder owns the key now",
      "store-unavailable":
        "no renew was confirmed before the lease's local validity deadline (the store was unreachable or slow, or this process was paused)"
    }[this.because]
    return `Lost the lease on ${quote(this.key)} (fence ${this.fence}): ${why}. The work under it was interrupted.`
  }
}

/**
 * The store (Redis) did not answer in time, refused the connection, or answered something unexpected.
 *
 * @category reasons
 * @since 0.1.0
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>("leasehold/LeaseError/StoreUnavailable")(
  "StoreUnavailable",
  {
    operation: Schema.String,
    key: Schema.String,
    cause: Schema.Defect()
  }
) {
  /** Marks a reason of a `LeaseError`, for `isLeaseErrorReason`. */
  readonly [ReasonTypeId] = ReasonTypeId

  /** `true`: Redis may answer the next call; the lease of a failed call expires at its TTL at worst. */
  get isRetryable(): boolean {
    return true
  }

  override get message(): string {
    // The cause can carry a reply of any size (a lease field written by something else): show only its start.
    const full = this.cause instanceof Error ? this.cause.message : String(this.cause)
    const detail = (full.length > 400 ? `${full.slice(0, 400)}… (${full.length} characters)` : full).replace(
      /[.\s]+$/,
      ""
    )
    return `Lease store unavailable during ${this.operation} of ${quote(this.key)}: ${detail}. Check that Redis is reachable and answering, and that nothing else writes the lease's keys; nothing stays locked longer than the lease's TTL.`
  }
}

/**
 * Every reason a `LeaseError` can carry.
 *
 * @category errors
 * @since 0.1.0
 */
export const LeaseErrorReason = Schema.Union([
  InvalidKey,
  InvalidTtl,
  InvalidToken,
  InvalidOwner,
  InvalidOption,
  ForeignLease,
  AcquireTimeout,
  ReentrantAcquire,
  LeaseLost,
  StoreUnavailable
])

/**
 * @category errors
 * @since 0.1.0
 */
export type LeaseErrorReason = typeof LeaseErrorReason.Type

/**
 * The error of every leasehold operation. Match on `reason._tag`, or catch one reason with `Effect.catchReason`;
 * recognise one with `isLeaseError` (not `instanceof`, which two copies of leasehold in one program defeat).
 *
 * @category errors
 * @since 0.1.0
 */
export class LeaseError extends Schema.TaggedError<LeaseError>("leasehold/LeaseError")("LeaseError", {
  reason: LeaseErrorReason
}) {
  /** Marks a `LeaseError`, for `isLeaseError`. */
  readonly [TypeId] = TypeId

  /** The reason, as the JavaScript error cause too (shown by `console.log` and error reporters). */
  override readonly cause = this.reason

  override get message(): string {
    return this.reason.message
  }

  /**
   * Whether trying the failed operation again may succeed: `true` for `AcquireTimeout`, `LeaseLost` and
   * `StoreUnavailable`, never for invalid input, a foreign lease or a reentrant acquire (see each reason's
   * `isRetryable`).
   */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * Wraps a reason in a `LeaseError`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (reason: LeaseErrorReason): LeaseError => new LeaseError({ reason })

/**
 * Whether an unknown value is a `LeaseError`, made by this copy of leasehold or another one.
 *
 * @category guards
 * @since 0.1.0
 */
export const isLeaseError = (u: unknown): u is LeaseError => Predicate.hasProperty(u, TypeId)

/**
 * Whether an unknown value is a reason of a `LeaseError`, made by this copy of leasehold or another one.
 *
 * @category guards
 * @since 0.1.0
 */
export const isLeaseErrorReason = (u: unknown): u is LeaseErrorReason => Predicate.hasProperty(u, ReasonTypeId)
