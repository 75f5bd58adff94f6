/**
 * Where lease tokens come from (the seed's `TokenSource` / `WithTokenSource`). The default draws 128 bits from the
 * platform CSPRNG (`crypto.getRandomValues`) and encodes them as base64url; override it only for tests.
 *
 * ```ts
 * import { Layer } from "effect"
 * import { Lease, TokenSource } from "leasehold"
 *
 * const custom = Lease.layer.pipe(Layer.provide(TokenSource.layer(mySource)))
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Result } from "effect"
import { Base64Url } from "effect/encoding"
import * as LeaseError from "./LeaseError.ts"
import * as LeaseToken from "./LeaseToken.ts"

/**
 * Makes a new token for each acquire attempt.
 *
 * @category models
 * @since 0.1.0
 */
export interface TokenSource {
  readonly newToken: Effect.Effect<LeaseToken.LeaseToken, LeaseError.LeaseError>
}

const tokenBytes = 16
const poolBytes = tokenBytes * 256

/**
 * Random bytes drawn from the CSPRNG 4 KiB at a time (one `getRandomValues` call per 256 tokens instead of one per
 * token); each token takes its own 16 bytes, and no byte is used twice.
 */
const randomPool = () => {
  const pool = new Uint8Array(poolBytes)
  let offset = poolBytes
  return (): Uint8Array => {
    if (offset === poolBytes) {
      globalThis.crypto.getRandomValues(pool)
      offset = 0
    }
    const bytes = pool.slice(offset, offset + tokenBytes)
    offset += tokenBytes
    return bytes
  }
}

const nextRandom = randomPool()

/**
 * The default source: 128 random bits from the CSPRNG, base64url (22 characters).
 *
 * @category constructors
 * @since 0.1.0
 */
export const secureRandom: TokenSource = {
  newToken: Effect.sync(() => Base64Url.encode(nextRandom()) as LeaseToken.LeaseToken)
}

/**
 * The token source in use; `secureRandom` unless a layer provides another.
 *
 * @category services
 * @since 0.1.0
 */
export const TokenSource = Context.Reference<TokenSource>("leasehold/TokenSource", {
  defaultValue: () => secureRandom
})

/**
 * A source from a function returning strings: each one is validated, and a malformed token fails the acquire with
 * reason `InvalidToken` instead of reaching the store.
 *
 * @category constructors
 * @since 0.1.0
 */
export const fromEffect = <E>(newToken: Effect.Effect<string, E>): TokenSource => ({
  newToken: Effect.flatMap(
    Effect.mapError(newToken, (cause) =>
      LeaseError.make(new LeaseError.InvalidToken({ problem: `the token source failed: ${String(cause)}` }))
    ),
    (token) => Result.match(LeaseToken.decode(token), { onSuccess: Effect.succeed, onFailure: Effect.fail })
  )
})

/**
 * Provides a token source to `Lease.layer`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (source: TokenSource): Layer.Layer<never> => Layer.succeed(TokenSource, source)
