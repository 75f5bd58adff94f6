/**
 * What a lease locks: a validated, branded string (the seed's `LeaseKey`).
 *
 * A key is 1 to 512 characters of well-formed Unicode (no lone surrogate) with no control characters. In Redis it
 * lives inside a hash tag (`lease:{<key>}`, with `%` and `}` percent-escaped so the tag stays whole), so every Redis
 * key of one lease shares a cluster slot.
 *
 * ```ts
 * import { LeaseKey } from "leasehold"
 *
 * const key = LeaseKey.make("jobs:nightly")        // throws on bad input
 * const checked = LeaseKey.decode(userInput)        // Result<LeaseKey, LeaseError>
 * ```
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as LeaseError from "./LeaseError.ts"

/**
 * The longest key accepted, in characters.
 *
 * @category constants
 * @since 0.1.0
 */
export const maxLength = 512

// biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern exists to find control characters
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/

// With the `u` flag a surrogate pair is one code point, so only a lone surrogate matches.
const loneSurrogate = /\p{Surrogate}/u

const problemOf = (key: string): string | undefined => {
  if (key.length === 0) return "it is empty"
  if (key.length > maxLength) return `it is ${key.length} characters long, more than ${maxLength}`
  if (controlCharacter.test(key)) return "it contains a control character"
  const surrogate = loneSurrogate.exec(key)
  if (surrogate !== null) {
    const unit = surrogate[0].charCodeAt(0).toString(16).toUpperCase()
    // Redis keys are bytes: UTF-8 turns every lone surrogate into U+FFFD, so such keys would share one Redis key.
    return `it is not well-formed Unicode (a lone surrogate U+${unit} at index ${surrogate.index}, which Redis would store as U+FFFD, the same key as others)`
  }
  return undefined
}

/**
 * The key schema, branded `LeaseKey`.
 *
 * @category schemas
 * @since 0.1.0
 */
export const LeaseKey = Schema.String.pipe(
  Schema.check(Schema.makeFilter((key: string) => problemOf(key) ?? true)),
  Schema.brand("LeaseKey")
)

/**
 * @category models
 * @since 0.1.0
 */
export type LeaseKey = typeof LeaseKey.Type

/**
 * Validates a key outside an Effect: `Result.succeed(key)` or a `LeaseError` with reason `InvalidKey`.
 *
 * @category decoding
 * @since 0.1.0
 */
export const decode = (key: string): Result.Result<LeaseKey, LeaseError.LeaseError> => {
  const problem = problemOf(key)
  return problem === undefined
    ? Result.succeed(key as LeaseKey)
    : Result.fail(LeaseError.make(new LeaseError.InvalidKey({ key, problem })))
}

/**
 * Builds a key, throwing the `LeaseError` on bad input (the counterpart of the seed's `Must…` constructors).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (key: string): LeaseKey => Result.getOrThrow(decode(key))
