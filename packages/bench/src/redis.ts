/**
 * The redis-server the bench runs against: started on a free loopback port without persistence, and an admin
 * connection for flushing, statistics and versions.
 *
 * @since 0.1.0
 */
import { RedisTestServer } from "@leasehold/testing"
import { Effect, Exit, Scope } from "effect"
import { createClient } from "redis"

/**
 * A started redis-server: its URL, its version, and `close` to stop it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Server {
  readonly url: string
  readonly port: number
  readonly close: () => Promise<void>
}

/**
 * Starts `redis-server` (from PATH) on a free port of 127.0.0.1 without persistence, with the test kit's
 * `RedisTestServer.startServer` (it retries a port taken in between, and kills the server if this process exits).
 *
 * @category constructors
 * @since 0.1.0
 */
export const startServer = async (): Promise<Server> => {
  const scope = Effect.runSync(Scope.make())
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  try {
    const server = await Effect.runPromise(Scope.provide(RedisTestServer.startServer(), scope))
    return { url: server.url, port: server.port, close }
  } catch (error) {
    await close()
    throw error
  }
}

const newClient = (url: string) => createClient({ url, disableOfflineQueue: true })

/**
 * A node-redis client without offline queue (a command sent while disconnected fails at once).
 *
 * @category models
 * @since 0.1.0
 */
export type Client = ReturnType<typeof newClient>

/**
 * An admin connection: empties the server, resets and reads `INFO commandstats`, reads the version.
 *
 * @category models
 * @since 0.1.0
 */
export interface Admin {
  readonly flushAll: () => Promise<void>
  readonly resetStats: () => Promise<void>
  /** Calls per command since the last reset, from `INFO commandstats` (e.g. `evalsha`, `set`, `config|resetstat`). */
  readonly commandCalls: () => Promise<Record<string, number>>
  readonly version: () => Promise<string>
  readonly client: Client
  readonly close: () => Promise<void>
}

/**
 * Script calls in `INFO commandstats` counts: `EVAL`, `EVALSHA` and their read-only forms. Redis also counts the
 * commands a script runs (its `PEXPIRE`, `GET`, ...), so counting the script calls is how one counts round trips of
 * script-based clients.
 *
 * @category statistics
 * @since 0.1.0
 */
export const scriptCalls = (calls: Record<string, number>): number =>
  (calls.eval ?? 0) + (calls.evalsha ?? 0) + (calls.eval_ro ?? 0) + (calls.evalsha_ro ?? 0) + (calls.fcall ?? 0)

/**
 * Connects an admin client (node-redis, no offline queue).
 *
 * @category constructors
 * @since 0.1.0
 */
export const connectAdmin = async (url: string): Promise<Admin> => {
  const client = newClient(url)
  client.on("error", () => {})
  await client.connect()
  return {
    client,
    flushAll: async () => {
      await client.sendCommand(["FLUSHALL"])
    },
    resetStats: async () => {
      await client.sendCommand(["CONFIG", "RESETSTAT"])
    },
    commandCalls: async () => {
      const info = String(await client.sendCommand(["INFO", "commandstats"]))
      const calls: Record<string, number> = {}
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2])
      return calls
    },
    version: async () => {
      const info = String(await client.sendCommand(["INFO", "server"]))
      return /^redis_version:(\S+)/m.exec(info)?.[1] ?? "unknown"
    },
    close: async () => {
      await client.close().catch(() => client.destroy())
    }
  }
}
