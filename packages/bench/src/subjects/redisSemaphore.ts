/**
 * `redis-semaphore` 5.8.0 `Mutex` on one ioredis client, with its default settings (lock timeout 10 s, waiters
 * retrying every 10 ms for up to 10 s, refresh by a `setInterval` per lock every 0.8 × lock timeout). For held locks
 * the lock timeout is the scenario's TTL, and `onLockLost` records the loss (its default throws from a timer).
 *
 * @since 0.1.0
 */

import { Mutex } from "redis-semaphore"
import { connectIoredis } from "./ioredis.ts"
import type { Hold, Subject } from "./Subject.ts"

/**
 * Connects the mutex library.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async ({ url }: { readonly url: string }): Promise<Subject> => {
  const { client, close } = await connectIoredis(url)
  const hold = async (key: string, ttlMillis: number): Promise<Hold> => {
    let lost = false
    const mutex = new Mutex(client, key, {
      lockTimeout: ttlMillis,
      onLockLost: () => {
        lost = true
      }
    })
    await mutex.acquire()
    return {
      owned: async () => !lost && mutex.isAcquired && (await client.get(`mutex:${key}`)) === mutex.identifier,
      release: () => mutex.release()
    }
  }
  return {
    acquireRelease: async (key) => {
      const mutex = new Mutex(client, key)
      await mutex.acquire()
      await mutex.release()
    },
    withLock: async (key, work) => {
      const mutex = new Mutex(client, key)
      await mutex.acquire()
      try {
        return await work()
      } finally {
        await mutex.release()
      }
    },
    hold,
    close
  }
}
