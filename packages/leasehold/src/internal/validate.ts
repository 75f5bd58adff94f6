import { Duration, Result, Schedule, Schema } from "effect"
import * as LeaseError from "../LeaseError.ts"
import { LeaseOwner } from "../LeaseOwner.ts"

const describe = (input: unknown): string => {
  if (Duration.isDuration(input)) return Duration.format(input)
  if (typeof input === "bigint") return `${input}n`
  return typeof input === "string" ? JSON.stringify(input) : String(input)
}

const invalidTtl = (input: unknown, problem: string) =>
  Result.fail(LeaseError.make(new LeaseError.InvalidTtl({ ttl: describe(input), problem })))

/** A duration in whole, finite, non-negative milliseconds, or the reason it is not one. */
const wholeMillis = (input: Duration.Input): number | string => {
  if (typeof input === "number" && Number.isNaN(input)) return "it is NaN"
  const duration = Duration.fromInput(input)
  if (duration._tag === "None")
    return 'it is not a duration (use a number of milliseconds, a Duration, or e.g. "30 seconds")'
  if (!Duration.isFinite(duration.value)) return "it is infinite"
  const millis = Duration.toMillis(duration.value)
  if (millis < 0 || Duration.isNegative(duration.value)) return "it is negative"
  if (!Number.isInteger(millis)) return `it is ${millis} ms, not a whole number of milliseconds`
  return millis
}

/**
 * The longest TTL accepted: 2^31 - 1 ms, the longest delay a JavaScript timer keeps (a renew or a wake-up is
 * scheduled from it), far inside what Redis's PEXPIRE takes.
 */
export const maxTtlMillis = 2_147_483_647

/** Checks a lease TTL: finite, whole milliseconds, positive, between `minimumMillis` and `maxTtlMillis`. */
export const ttlMillis = (
  input: Duration.Input,
  minimumMillis: number,
  why: string
): Result.Result<number, LeaseError.LeaseError> => {
  const millis = wholeMillis(input)
  if (typeof millis === "string") return invalidTtl(input, millis)
  if (millis === 0) return invalidTtl(input, "it is zero; a lease needs a positive TTL")
  if (millis < minimumMillis) return invalidTtl(input, `it is shorter than ${minimumMillis} ms, the minimum ${why}`)
  if (millis > maxTtlMillis) {
    return invalidTtl(input, `it is longer than ${maxTtlMillis} ms (about 24.8 days), the longest lease supported`)
  }
  return Result.succeed(millis)
}

const invalidOption = (option: string, problem: string) =>
  Result.fail(LeaseError.make(new LeaseError.InvalidOption({ option, problem })))

/** Checks the renew interval of an auto-renewed lease: positive and at most a third of the TTL. */
export const renewEveryMillis = (
  input: Duration.Input | undefined,
  ttlMillis: number
): Result.Result<number, LeaseError.LeaseError> => {
  const most = Math.floor(ttlMillis / 3)
  if (input === undefined) return Result.succeed(most)
  const millis = wholeMillis(input)
  if (typeof millis === "string") return invalidOption("renewEvery", millis)
  if (millis === 0) return invalidOption("renewEvery", "it is zero")
  if (millis > most) {
    return invalidOption(
      "renewEvery",
      `${millis} ms is more than a third of the TTL (${most} ms), too late to renew safely`
    )
  }
  return Result.succeed(millis)
}

/** How a blocking acquire waits: up to a budget of milliseconds, or as long as a schedule recurs. */
export type WaitPolicy =
  | { readonly _tag: "Budget"; readonly millis: number }
  | { readonly _tag: "Schedule"; readonly schedule: Schedule.Schedule<unknown, unknown> }

/** Checks the `wait` option: a non-negative duration (0: try once) or a `Schedule`; the default is the TTL. */
export const waitPolicy = (
  input: Duration.Input | Schedule.Schedule<unknown, unknown> | undefined,
  ttlMillis: number
): Result.Result<WaitPolicy, LeaseError.LeaseError> => {
  if (input === undefined) return Result.succeed({ _tag: "Budget", millis: ttlMillis })
  if (Schedule.isSchedule(input)) return Result.succeed({ _tag: "Schedule", schedule: input })
  const millis = wholeMillis(input as Duration.Input)
  return typeof millis === "string" ? invalidOption("wait", millis) : Result.succeed({ _tag: "Budget", millis })
}

const maxOwnerBytes = 4096
const decodeOwner = Schema.decodeUnknownResult(LeaseOwner)

/** Checks owner metadata and encodes it for the store (JSON, at most 4 KiB). */
export const encodeOwner = (owner: unknown): Result.Result<string | undefined, LeaseError.LeaseError> => {
  if (owner === undefined) return Result.succeed(undefined)
  const invalid = (problem: string) => Result.fail(LeaseError.make(new LeaseError.InvalidOwner({ problem })))
  const decoded = decodeOwner(owner)
  if (Result.isFailure(decoded)) return invalid(decoded.failure.message)
  const text = JSON.stringify(decoded.success)
  return text.length > maxOwnerBytes
    ? invalid(`it encodes to ${text.length} characters, more than ${maxOwnerBytes}`)
    : Result.succeed(text)
}

/** Reads owner metadata back from the store; metadata that does not decode is reported as absent. */
export const parseOwner = (text: string | undefined): LeaseOwner | undefined => {
  if (text === undefined) return undefined
  try {
    const decoded = decodeOwner(JSON.parse(text))
    return Result.isSuccess(decoded) ? decoded.success : undefined
  } catch {
    return undefined
  }
}
