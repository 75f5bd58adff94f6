import { Effect } from "effect"

/** Reads the monotonic clock in milliseconds (TestClock moves it). */
export const monotonicMillis: Effect.Effect<number> = Effect.clockWith((clock) =>
  Effect.sync(() => Number(clock.currentTimeNanosUnsafe()) / 1e6)
)
