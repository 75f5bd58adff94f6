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
import { Duration, Schema } from "effect"
import { LeaseOwner } from "./LeaseOwner.ts"

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
export class InvalidKey extends Schema.TaggedError<InvalidKey>()("InvalidKey", {
  key: Schema.String,
  problem: Schema.String
}) {
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
export class InvalidTtl extends Schema.TaggedError<InvalidTtl>()("InvalidTtl", {
  ttl: Schema.String,
  problem: Schema.String
}) {
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
export class InvalidToken extends Schema.TaggedError<InvalidToken>()("InvalidToken", {
  problem: Schema.String
}) {
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
export class InvalidOwner extends Schema.TaggedError<InvalidOwner>()("InvalidOwner", {
  problem: Schema.String
}) {
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
export class InvalidOption extends Schema.TaggedError<InvalidOption>()("InvalidOption", {
  option: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `Invalid lease option "${this.option}": ${this.problem}.`
  }
}

/**
 * A lease handed to a store other than the one that granted it (another layer, another store instance). Renewing or
 * releasing it there would act on a lock the caller does not hold.
 *
 * @category reasons
 * @since 0.1.0
 */
export class ForeignLease extends Schema.TaggedError<ForeignLease>()("ForeignLease", {
  key: Schema.String,
  operation: Schema.String
}) {
  override get message(): string {
    return `Cannot ${this.operation} the lease on ${quote(this.key)}: it was acquired through another lease store. Use the Lease service that acquired it.`
  }
}

/**
 * A blocking acquire whose wait budget ran out while another holder kept the key.
 *
 * @category reasons
 * @since 0.1.0
 */
export class AcquireTimeout extends Schema.TaggedError<AcquireTimeout>()("AcquireTimeout", {
  key: Schema.String,
  waited: Schema.Duration,
  holder: Schema.optional(LeaseOwner)
}) {
  override get message(): string {
    const holder = this.holder === undefined ? "another holder" : `holder ${JSON.stringify(this.holder.id)}`
    return `Timed out after ${Duration.format(this.waited)} waiting for the lease on ${quote(this.key)}, held by ${holder}. Wait longer (the "wait" option) or retry later.`
  }
}

/**
 * Why a held lease was lost:
 * - `expired`: the lease was gone from the store (its TTL ran out before a renew landed);
 * - `stolen`: another token holds the key now;
 * - `store-unavailable`: no renew succeeded before the local validity deadline.
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
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  key: Schema.String,
  reason: LostBecause,
  fence: Schema.BigInt
}) {
  override get message(): string {
    const why = {
      expired: "it expired in the store before a renew landed",
      stolen: "another holder owns the key now",
      "store-unavailable": "the store could not be reached before the lease's validity deadline"
    }[this.reason]
    return `Lost the lease on ${quote(this.key)} (fence ${this.fence}): ${why}. The work under it was interrupted.`
  }
}

/**
 * The store (Redis) did not answer in time, refused the connection, or answered something unexpected.
 *
 * @category reasons
 * @since 0.1.0
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  operation: Schema.String,
  key: Schema.String,
  cause: Schema.Defect()
}) {
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
  LeaseLost,
  StoreUnavailable
])

/**
 * @category errors
 * @since 0.1.0
 */
export type LeaseErrorReason = typeof LeaseErrorReason.Type

/**
 * The error of every leasehold operation. Match on `reason._tag`, or catch one reason with `Effect.catchReason`.
 *
 * @category errors
 * @since 0.1.0
 */
export class LeaseError extends Schema.TaggedError<LeaseError>()("LeaseError", {
  reason: LeaseErrorReason
}) {
  override get message(): string {
    return this.reason.message
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
 * Whether an unknown value is a `LeaseError`.
 *
 * @category guards
 * @since 0.1.0
 */
export const isLeaseError = (u: unknown): u is LeaseError => u instanceof LeaseError
