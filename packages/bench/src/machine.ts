/**
 * What the numbers were measured on: the machine, its load, and the versions of Node, Redis and every library.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as os from "node:os"

/**
 * The environment of a run.
 *
 * @category models
 * @since 0.1.0
 */
export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly os: string
  readonly node: string
  readonly redis: string
  readonly libraries: ReadonlyArray<{ readonly name: string; readonly version: string }>
  readonly date: string
  readonly loadBefore: ReadonlyArray<number>
}

const versionOf = (relativePath: string): string => {
  try {
    const text = fs.readFileSync(new URL(relativePath, import.meta.url), "utf8")
    return String((JSON.parse(text) as { version?: unknown }).version ?? "?").replace(/^v/, "")
  } catch {
    return "?"
  }
}

const libraries = [
  { name: "leasehold", path: "../node_modules/leasehold/package.json" },
  { name: "effect", path: "../node_modules/effect/package.json" },
  { name: "@effect/platform-node", path: "../node_modules/@effect/platform-node/package.json" },
  { name: "redis (node-redis)", path: "../node_modules/redis/package.json" },
  { name: "ioredis", path: "../node_modules/ioredis/package.json" },
  { name: "redlock", path: "../node_modules/redlock/package.json" },
  { name: "@sesamecare-oss/redlock", path: "../node_modules/@sesamecare-oss/redlock/package.json" },
  { name: "redis-semaphore", path: "../node_modules/redis-semaphore/package.json" },
  { name: "effect-distributed-lock", path: "../../bench-effect3/node_modules/effect-distributed-lock/package.json" },
  { name: "effect (for effect-distributed-lock)", path: "../../bench-effect3/node_modules/effect/package.json" }
]

/**
 * Describes this machine now, with the Redis version read from the server.
 *
 * @category constructors
 * @since 0.1.0
 */
export const describeMachine = (redisVersion: string): Machine => {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: redisVersion,
    libraries: libraries.map((library) => ({ name: library.name, version: versionOf(library.path) })),
    date: new Date().toISOString(),
    loadBefore: os.loadavg()
  }
}
