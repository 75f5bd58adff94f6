/**
 * The raw ioredis baseline: `SET key token PX ttl NX` to acquire, a compare-and-delete script by `EVALSHA` to
 * release; waiting is a retry every millisecond. No automatic renewal.
 *
 * @since 0.1.0
 */

import { sleep } from "../clock.ts"
import { connectIoredis } from "./ioredis.ts"
import { releaseLua, retryMillis } from "./rawNodeRedis.ts"
import { NotAcquired, randomToken, type Subject, type SubjectOptions } from "./Subject.ts"

/**
 * Connects the raw ioredis baseline.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const { client, close } = await connectIoredis(url)
  const releaseSha = String(await client.script("LOAD", releaseLua))
  const tryAcquire = async (key: string, token: string) =>
    (await client.set(key, token, "PX", ttlMillis, "NX")) === "OK"
  const release = (key: string, token: string) => client.evalsha(releaseSha, 1, key, token)
  return {
    acquireRelease: async (key) => {
      const token = randomToken()
      if (!(await tryAcquire(key, token))) throw new NotAcquired(`${key} is held`)
      await release(key, token)
    },
    withLock: async (key, work) => {
      const token = randomToken()
      while (!(await tryAcquire(key, token))) await sleep(retryMillis)
      try {
        return await work()
      } finally {
        await release(key, token)
      }
    },
    close
  }
}
