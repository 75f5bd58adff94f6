/**
 * Proof of ownership of a lease: a random string compared by the store on every renew, release and ownership check
 * (the seed's `LeaseToken`). Tokens are secrets: leasehold never logs them.
 *
 * ```ts
 * import { LeaseToken } from "leasehold"
 *
 * const token = LeaseToken.make("0123456789abcdef")  // the seed's MustLeaseToken: throws on bad input
 * const checked = LeaseToken.decode(input)           // the seed's NewLeaseToken: Result<LeaseToken, LeaseError>
 * ```
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as LeaseError from "./LeaseError.ts"

/**
 * The shortest token accepted, in characters.
 *
 * @category constants
 * @since 0.1.0
 */
export const minLength = 16

/**
 * The longest token accepted, in characters.
 *
 * @category constants
 * @since 0.1.0
 */
export const maxLength = 256

const alphabet = /^[A-Za-z0-9._~:-]*$/

const problemOf = (token: string): string | undefined => {
  if (token.length < minLength) return `it is ${token.length} characters long, fewer than ${minLength}`
  if (token.length > maxLength) return `it is ${token.length} characters long, more than ${maxLength}`
  if (!alphabet.test(token)) return "it contains a character outside [A-Za-z0-9._~:-]"
  return undefined
}

/**
 * The token schema, branded `LeaseToken`.
 *
 * @category schemas
 * @since 0.1.0
 */
export const LeaseToken = Schema.String.pipe(
  Schema.check(Schema.makeFilter((token: string) => problemOf(token) ?? true)),
  Schema.brand("LeaseToken")
)

/**
 * @category models
 * @since 0.1.0
 */
export type LeaseToken = typeof LeaseToken.Type

/**
 * Validates a token outside an Effect: `Result.succeed(token)` or a `LeaseError` with reason `InvalidToken`.
 *
 * @category decoding
 * @since 0.1.0
 */
export const decode = (token: string): Result.Result<LeaseToken, LeaseError.LeaseError> => {
  const problem = problemOf(token)
  return problem === undefined
    ? Result.succeed(token as LeaseToken)
    : Result.fail(LeaseError.make(new LeaseError.InvalidToken({ problem })))
}

/**
 * Builds a token, throwing the `LeaseError` on bad input.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (token: string): LeaseToken => Result.getOrThrow(decode(token))
