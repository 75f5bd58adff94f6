/**
 * `effect-distributed-lock` 0.0.11 (Effect 3), through the Promise adapter of `@leasehold/bench-effect3`, with its
 * defaults: refresh every TTL/3, waiters polling every 100 ms and woken by pub/sub on release.
 *
 * @since 0.1.0
 */
import * as Effect3 from "@leasehold/bench-effect3"
import { NotAcquired, type Subject, type SubjectOptions } from "./Subject.ts"

/**
 * Connects the library (one ioredis client; its waiters open their own subscriber connections).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const lock = await Effect3.make({ url, keyPrefix: "bench-edl:" })
  return {
    acquireRelease: async (key) => {
      if (!(await lock.acquireRelease(key, ttlMillis))) throw new NotAcquired(`${key} is held`)
    },
    withLock: (key, work) => lock.withLock(key, ttlMillis, work),
    hold: (key, holdTtlMillis) => lock.hold(key, holdTtlMillis),
    close: lock.close
  }
}
