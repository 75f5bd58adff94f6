/**
 * The raw node-redis baseline: `SET key token NX PX ttl` to acquire, a compare-and-delete script by `EVALSHA` to
 * release; waiting is a retry every millisecond. Also the "one timer per lock" design of the hold scenarios: a
 * `setInterval` per held lock renewing it with a compare-and-`PEXPIRE` script every TTL/3.
 *
 * @since 0.1.0
 */
import { createClient } from "redis"
import { sleep } from "../clock.ts"
import { type Hold, NotAcquired, randomToken, type Subject, type SubjectOptions } from "./Subject.ts"

/**
 * Deletes the key if it still holds the token.
 *
 * @category scripts
 * @since 0.1.0
 */
export const releaseLua = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

/**
 * Extends the key's TTL if it still holds the token.
 *
 * @category scripts
 * @since 0.1.0
 */
export const renewLua = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`

/**
 * How long a raw waiter sleeps between two `SET NX` attempts.
 *
 * @category constants
 * @since 0.1.0
 */
export const retryMillis = 1

const connect = async (url: string) => {
  const client = createClient({ url, disableOfflineQueue: true })
  client.on("error", () => {})
  await client.connect()
  const releaseSha = await client.scriptLoad(releaseLua)
  const renewSha = await client.scriptLoad(renewLua)
  const tryAcquire = async (key: string, token: string, ttlMillis: number) =>
    (await client.set(key, token, { condition: "NX", expiration: { type: "PX", value: ttlMillis } })) === "OK"
  const release = (key: string, token: string) => client.evalSha(releaseSha, { keys: [key], arguments: [token] })
  const renew = (key: string, token: string, ttlMillis: number) =>
    client.evalSha(renewSha, { keys: [key], arguments: [token, String(ttlMillis)] })
  const close = () => client.close().catch(() => client.destroy())
  return { client, tryAcquire, release, renew, close }
}

/**
 * The raw baseline: acquire/release and a polling `withLock`; no automatic renewal.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const redis = await connect(url)
  return {
    acquireRelease: async (key) => {
      const token = randomToken()
      if (!(await redis.tryAcquire(key, token, ttlMillis))) throw new NotAcquired(`${key} is held`)
      await redis.release(key, token)
    },
    withLock: async (key, work) => {
      const token = randomToken()
      while (!(await redis.tryAcquire(key, token, ttlMillis))) await sleep(retryMillis)
      try {
        return await work()
      } finally {
        await redis.release(key, token)
      }
    },
    close: redis.close
  }
}

/**
 * The "one timer per lock" design: each held lock has its own `setInterval` that renews it every TTL/3 with a
 * compare-and-`PEXPIRE` script, on one shared node-redis client. Holding only.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeTimerPerLock = async ({ url }: SubjectOptions): Promise<Subject> => {
  const redis = await connect(url)
  const hold = async (key: string, ttlMillis: number): Promise<Hold> => {
    const token = randomToken()
    if (!(await redis.tryAcquire(key, token, ttlMillis))) throw new NotAcquired(`${key} is held`)
    let lost = false
    const timer = setInterval(() => {
      redis.renew(key, token, ttlMillis).then(
        (renewed) => {
          if (renewed !== 1) {
            lost = true
            clearInterval(timer)
          }
        },
        () => {} // a failed renew is retried at the next tick
      )
    }, ttlMillis / 3)
    return {
      owned: async () => !lost && (await redis.client.get(key)) === token,
      release: async () => {
        clearInterval(timer)
        await redis.release(key, token)
      }
    }
  }
  return { hold, close: redis.close }
}

/**
 * The raw baseline doing leasehold's Redis-side work: acquire and release with leasehold's own Lua scripts
 * (`LeaseStore.redisScripts`: a fence counter, the owner and the Redis time in a hash, a release announcement) by
 * `EVALSHA` on a node-redis client, with no Effect and no checks around them. Against `raw node-redis` it shows what
 * the richer scripts cost in Redis; against `leasehold` it shows what the library adds in Node.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeWithLeaseholdScripts = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const { LeaseStore } = await import("leasehold")
  const redis = await connect(url)
  const acquireSha = await redis.client.scriptLoad(LeaseStore.redisScripts.acquire)
  const releaseSha = await redis.client.scriptLoad(LeaseStore.redisScripts.release)
  const prefix = "bench-scripts:"
  const channel = LeaseStore.releaseChannel(prefix)
  return {
    acquireRelease: async (key) => {
      const token = randomToken()
      const keys = LeaseStore.redisKeys(prefix, key)
      const reply = (await redis.client.evalSha(acquireSha, {
        keys: [keys.lease, keys.fence],
        arguments: [token, String(ttlMillis), ""]
      })) as ReadonlyArray<unknown>
      if (reply[0] !== 1) throw new NotAcquired(`${key} is held`)
      await redis.client.evalSha(releaseSha, { keys: [keys.lease], arguments: [token, channel, key] })
    },
    close: redis.close
  }
}
