import { type Clock, Effect } from "effect"

/** The monotonic clock of `clock` in milliseconds (a `TestClock` moves it). */
export const millisOf = (clock: Clock.Clock): number => Number(clock.currentTimeNanosUnsafe()) / 1e6

/** Reads the monotonic clock in milliseconds (TestClock moves it). */
export const monotonicMillis: Effect.Effect<number> = Effect.clockWith((clock) => Effect.sync(() => millisOf(clock)))
