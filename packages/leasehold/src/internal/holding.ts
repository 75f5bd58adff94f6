import type { Deferred } from "effect"
import type * as LeaseError from "../LeaseError.ts"
import type { LeaseKey } from "../LeaseKey.ts"
import type { Handle } from "./handle.ts"

/**
 * One hold of an auto-renewed lease (`Lease.hold`, `Lease.withLease`), as its release sees it: the renewal (its
 * `lease` follows the renews; set once acquired), the loss signal, and whether its scope has closed.
 */
export class Holding {
  readonly key: LeaseKey
  readonly lost: Deferred.Deferred<LeaseError.LeaseLost>
  renewal: { readonly lease: Handle } | undefined = undefined
  closed = false

  constructor(key: LeaseKey, lost: Deferred.Deferred<LeaseError.LeaseLost>) {
    this.key = key
    this.lost = lost
  }
}
