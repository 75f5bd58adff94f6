/**
 * How the Promise facade (`leasehold/promise`) turns the end of an effect into the settlement of a Promise: a value
 * resolves; a failure rejects with the very error the effect failed with (a `LeaseError`, or what the caller's
 * callback threw); a defect or an interruption rejects with a plain `Error` that says so.
 */
import { Cause, Exit, Result } from "effect"

/**
 * What a callback run under a lease threw or rejected with, kept apart from leasehold's own failures so that it is
 * handed back exactly as thrown (any value, an `Error` or not).
 */
export class CallbackRejection {
  readonly thrown: unknown
  constructor(thrown: unknown) {
    this.thrown = thrown
  }
}

/** The error that an operation of a closed facade rejects with. */
export const closedError = (operation: string): Error =>
  new Error(`leasehold: cannot ${operation}: this client is closed. Call connect() again for a new one.`)

/** The error that an operation stopped by `close()` rejects with (and the reason its lease's signal is aborted with). */
export const interruptedError = (operation: string): Error =>
  new Error(`leasehold: ${operation} was interrupted: the client was closed while it ran.`)

const defectError = (operation: string, defect: unknown): Error =>
  new Error(
    `leasehold: ${operation} failed with an unexpected defect: ${defect instanceof Error ? defect.message : String(defect)}`,
    { cause: defect }
  )

/** What a failed run of `operation` rejects with. */
export const rejectionOf = (operation: string, cause: Cause.Cause<unknown>): unknown => {
  const error = Cause.findError(cause)
  if (Result.isSuccess(error)) return error.success instanceof CallbackRejection ? error.success.thrown : error.success
  const defect = Cause.findDefect(cause)
  if (Result.isSuccess(defect)) return defectError(operation, defect.success)
  return interruptedError(operation)
}

/** Settles a Promise with the exit of a run of `operation`. */
export const settle = <A>(
  operation: string,
  exit: Exit.Exit<A, unknown>,
  resolve: (value: A) => void,
  reject: (error: unknown) => void
): void => {
  if (Exit.isSuccess(exit)) resolve(exit.value)
  else reject(rejectionOf(operation, exit.cause))
}
