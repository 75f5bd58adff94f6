/**
 * The redis-server the bench runs against: started on a free loopback port without persistence, and an admin
 * connection for flushing, statistics and versions.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"
import { createClient } from "redis"
import { bounded } from "./clock.ts"
import { stop, track } from "./procs.ts"

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

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
    })
  })

const startOnce = async (): Promise<Server> => {
  const port = await freePort()
  const child = track(
    spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
      { cwd: os.tmpdir(), stdio: ["ignore", "pipe", "pipe"] }
    )
  )
  let output = ""
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-8192)
      if (output.includes("Ready to accept connections")) resolve()
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("error", reject)
    child.once("exit", (code, signal) => reject(new Error(`redis-server exited (${code ?? signal}): ${output}`)))
  })
  try {
    await bounded(ready, 10_000, "redis-server start")
  } catch (error) {
    await stop(child)
    throw error
  }
  return { url: `redis://127.0.0.1:${port}`, port, close: () => stop(child) }
}

/**
 * Starts `redis-server` (from PATH) on a free port of 127.0.0.1 with `--save "" --appendonly no`; retries a few
 * times if the port was taken in between. The process is registered for `killAll`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const startServer = async (): Promise<Server> => {
  let last: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce()
    } catch (error) {
      last = error
    }
  }
  throw last
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
