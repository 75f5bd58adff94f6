/**
 * `redlock@5.0.0-beta.2` (node-redlock) on one ioredis client, with its default settings (10 retries 200 ± 100 ms
 * apart, extension 500 ms before expiry in `using`). Two subjects: `acquire`/`release`, and `using()` (automatic
 * extension). A no-op `error` listener is attached, as its README asks: it emits `error` for every failed attempt.
 *
 * @since 0.1.0
 */

import Redlock from "redlock"
import { connectIoredis } from "./ioredis.ts"
import { holdInside, type Subject, type SubjectOptions } from "./Subject.ts"

const connect = async (url: string) => {
  const { client, close } = await connectIoredis(url)
  const redlock = new Redlock([client])
  redlock.on("error", () => {})
  return { client, redlock, close }
}

/**
 * redlock through `acquire` and `release` (waiting is redlock's own retry loop); no automatic extension.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeAcquireRelease = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const { redlock, close } = await connect(url)
  return {
    acquireRelease: async (key) => {
      const lock = await redlock.acquire([key], ttlMillis)
      await lock.release()
    },
    withLock: async (key, work) => {
      const lock = await redlock.acquire([key], ttlMillis)
      try {
        return await work()
      } finally {
        await lock.release()
      }
    },
    close
  }
}

/**
 * redlock through `using()`, which extends the lock while the routine runs.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeUsing = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const { client, redlock, close } = await connect(url)
  // redlock 5's routine gets only the abort signal: ownership is checked by the key's existence.
  const hold = (key: string, holdTtlMillis: number) =>
    holdInside(
      (routine: (signal: AbortSignal) => Promise<void>) => redlock.using([key], holdTtlMillis, routine),
      async (signal) => !signal.aborted && (await client.exists(key)) === 1
    )
  return {
    acquireRelease: (key) => redlock.using([key], ttlMillis, async () => {}),
    withLock: (key, work) => redlock.using([key], ttlMillis, () => work()),
    hold,
    close
  }
}
