/**
 * Time for the bench: one monotonic clock shared by every process on the machine, and bounded waits.
 *
 * @since 0.1.0
 */

/**
 * Milliseconds on the system's monotonic clock (`process.hrtime`, CLOCK_MONOTONIC on Linux). Every process on the
 * machine reads the same clock, so the hand-off gaps between worker processes can be compared directly.
 *
 * @category time
 * @since 0.1.0
 */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6

/**
 * Resolves after `millis` milliseconds (a timer: at least that long, usually up to a millisecond more).
 *
 * @category time
 * @since 0.1.0
 */
export const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis))

/**
 * Raised by `bounded` when a step overran its time budget.
 *
 * @category errors
 * @since 0.1.0
 */
export class Overrun extends Error {
  override readonly name = "Overrun"
}

/**
 * Settles like `promise`, or rejects with `Overrun` after `millis`: no step of the bench waits without a bound. The
 * overrunning promise is left behind; its caller closes whatever it was using.
 *
 * @category time
 * @since 0.1.0
 */
export const bounded = <A>(promise: Promise<A>, millis: number, what: string): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Overrun(`${what} did not finish within ${Math.round(millis)} ms`)), millis)
  })
  return Promise.race([promise, overrun]).finally(() => clearTimeout(timer))
}

/**
 * The message of an unknown error, on one line.
 *
 * @category errors
 * @since 0.1.0
 */
export const messageOf = (error: unknown): string =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).split("\n")[0]!.slice(0, 300)
