/**
 * `@sesamecare-oss/redlock` 1.4.0 (a maintained fork of node-redlock) on one ioredis client, with its default
 * settings: `acquire`/`release` for single cycles, `using()` (automatic extension 500 ms before expiry) for waiting
 * and holding. A no-op `error` listener is attached: it emits `error` for every failed attempt.
 *
 * @since 0.1.0
 */
import { Redlock } from "@sesamecare-oss/redlock"
import { connectIoredis } from "./ioredis.ts"
import { holdInside, type Subject, type SubjectOptions } from "./Subject.ts"

/**
 * Connects the fork.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const { client, close } = await connectIoredis(url)
  const redlock = new Redlock([client])
  redlock.on("error", () => {})
  const hold = (key: string, holdTtlMillis: number) =>
    holdInside(
      (routine: (signal: AbortSignal, context: { lock: { value: string } }) => Promise<void>) =>
        redlock.using([key], holdTtlMillis, routine),
      async (signal, context) => !signal.aborted && (await client.get(key)) === context.lock.value
    )
  return {
    acquireRelease: async (key) => {
      const lock = await redlock.acquire([key], ttlMillis)
      await lock.release()
    },
    withLock: (key, work) => redlock.using([key], ttlMillis, () => work()),
    hold,
    close
  }
}
