/**
 * The ioredis client of the libraries that run on ioredis (and of the raw ioredis baseline), connected the same way
 * for each.
 *
 * @since 0.1.0
 */
import { Redis } from "ioredis"

/**
 * Connects an ioredis client to `url` (errors are left to the commands: a no-op `error` listener is attached), and
 * `close` quits it, or disconnects it if quitting fails.
 *
 * @category constructors
 * @since 0.1.0
 */
export const connectIoredis = async (url: string) => {
  const client = new Redis(url, { lazyConnect: true })
  client.on("error", () => {})
  await client.connect()
  const close = async () => {
    await client.quit().catch(() => client.disconnect())
  }
  return { client, close }
}
