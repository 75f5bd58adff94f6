/**
 * Optional metadata about who holds a lease (the seed's `LeaseOwner`). It is stored with the lease for inspection
 * and for `AcquireTimeout` messages only: ownership itself is proven by the token, never by this.
 *
 * ```ts
 * import { Lease, LeaseOwner } from "leasehold"
 *
 * const owner = LeaseOwner.make({ id: "worker-1", host: "app-3", pid: process.pid, labels: { job: "nightly" } })
 * const attempt = Lease.acquire("jobs:nightly", "30 seconds", { owner })
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const Text = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max))

/**
 * The owner schema: an `id` (1 to 256 characters), and optionally a `host`, a `pid` and string `labels`.
 *
 * @category schemas
 * @since 0.1.0
 */
export const LeaseOwner = Schema.Struct({
  id: Text(256),
  host: Schema.optionalKey(Text(256)),
  pid: Schema.optionalKey(Schema.Int),
  labels: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})

/**
 * @category models
 * @since 0.1.0
 */
export type LeaseOwner = typeof LeaseOwner.Type

/**
 * Builds an owner, checking it against the schema; throws on bad input (use it with literals you control).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (owner: LeaseOwner): LeaseOwner => LeaseOwner.make(owner)
