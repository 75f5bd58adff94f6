/**
 * Deterministic tokens for tests: `test-token-000001`, `test-token-000002`, … in the order acquires ask for them.
 * Never use them outside tests: anyone who can guess a token can release the lease.
 *
 * ```ts
 * import { Layer } from "effect"
 * import { Lease, LeaseStore } from "leasehold"
 * import { SequenceTokens } from "@leasehold/testing"
 *
 * const TestLease = Lease.layer.pipe(Layer.provide([LeaseStore.layerMemory, SequenceTokens.layer()]))
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { type LeaseToken, TokenSource } from "leasehold"

/**
 * A token source counting up from 1, each token `${prefix}` followed by a six-digit number.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (prefix = "test-token-"): TokenSource.TokenSource => {
  let next = 0
  return TokenSource.fromEffect(
    Effect.sync(() => `${prefix}${String(++next).padStart(6, "0")}` as LeaseToken.LeaseToken)
  )
}

/**
 * Provides a fresh `make` token source to `Lease.layer` (a new count for each layer built).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (prefix?: string) => Layer.sync(TokenSource.TokenSource, () => make(prefix))
