/**
 * The held-lease value and the two margins that define its local validity deadline. Only leasehold makes handles:
 * `Lease` exports `Handle` as a type, and every operation on a handle checks it with `isGenuine`.
 */
import { Duration, Option } from "effect"
import type { LeaseKey } from "../LeaseKey.ts"
import type { LeaseOwner } from "../LeaseOwner.ts"
import type { LeaseToken } from "../LeaseToken.ts"

/**
 * The safety margin taken off a lease's TTL for its local validity deadline: 1% of the TTL plus 2 ms, for clock
 * rate differences between this process and the store.
 */
export const driftMillis = (ttlMillis: number): number => ttlMillis * 0.01 + 2

/**
 * How long before a lease's `validUntil` an auto-renewed lease stops trying to renew and interrupts the work:
 * room for a late timer (Node's fire 1 to several milliseconds late) and for the interruption to land, so the work
 * stops before the lease can expire in the store. A tenth of the TTL, at most 10 ms.
 */
export const reactionMillis = (ttlMillis: number): number => Math.min(10, ttlMillis / 10)

/**
 * The fields of a held lease (see `Handle`).
 *
 * @category models
 * @since 0.1.0
 */
export interface HandleFields {
  readonly key: LeaseKey
  readonly token: LeaseToken
  readonly ttl: Duration.Duration
  readonly owner: Option.Option<LeaseOwner>
  readonly fence: bigint
  readonly acquiredAt: Date
  readonly validUntil: number
  /** The id of the store that granted the lease. */
  readonly storeId: string
}

/**
 * A held lease (the seed's `Lease`): the key, the token that proves ownership, the TTL, the owner metadata, the
 * fence (a per-key counter that rises with every acquire, for protected resources to reject stale holders), the
 * store's time of acquisition, and `validUntil`, the local deadline (monotonic clock, milliseconds) after which the
 * holder must treat the lease as lost whatever the store says.
 *
 * Only leasehold makes handles: a copy or a hand-made one is refused with `ForeignLease`. The token is hidden from
 * `toJSON` and `console.log`, so logging a handle does not leak it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Handle extends HandleFields {
  toJSON(): unknown
}

/**
 * Every handle leasehold made. A module-private set rather than a class check: the class is reachable from any
 * handle (`handle.constructor`), the set is not.
 */
const genuine = new WeakSet<object>()

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the constructor assigns every field of HandleFields
class HandleValue {
  constructor(fields: HandleFields) {
    Object.assign(this, fields)
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

// biome-ignore lint/correctness/noUnusedVariables: declaration merging gives the class its fields' types
interface HandleValue extends HandleFields {}

/** Makes a handle that leasehold's operations accept. */
export const makeHandle = (fields: HandleFields): Handle => {
  const handle = new HandleValue(fields)
  genuine.add(handle)
  return handle
}

/** Whether `u` is a handle leasehold made (not a copy, a spread, or one built by hand). */
export const isGenuine = (u: unknown): u is Handle => typeof u === "object" && u !== null && genuine.has(u)
