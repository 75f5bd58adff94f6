/**
 * A real Redis for tests.
 *
 * `layerServer` finds or starts a Redis server and describes it as the {@link RedisTestServer} service;
 * `layer` adds a connected `Redis.Redis` client (node-redis) on top. The server is chosen in this order:
 *
 * 1. `REDIS_URL`, when set: an existing server, nothing is started (`kind: "external"`).
 * 2. `redis-server` on `PATH`: a private, throw-away server on a free port of 127.0.0.1, without persistence,
 *    killed when the layer scope closes or the Node process exits (`kind: "spawned"`).
 * 3. A container through testcontainers (image `LEASEHOLD_REDIS_IMAGE`, else `redis:7`), only when testcontainers
 *    is installed and a container runtime answers (`kind: "container"`).
 *
 * `layerContainer` asks for the container path explicitly, whatever `REDIS_URL` and `PATH` hold.
 *
 * `startServer` starts a private server from `PATH` regardless, optionally on a given port: for tests that signal,
 * kill or restart the process (`RedisFaults` builds on it).
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Context, Data, Duration, Effect, Layer, References, Schedule, Schema, type Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { RedisTransport } from "leasehold"
import { awaitExit, hasExited } from "./ChildProcesses.ts"

/**
 * Describes the Redis server the tests talk to.
 *
 * **Details**
 *
 * - `url`: a `redis://` URL to hand to a client. For `REDIS_URL` it is that value and may hold credentials, so
 *   do not log it.
 * - `host` and `port`: where the server listens (`127.0.0.1` for spawned servers).
 * - `pid`: the process id of a spawned `redis-server`, `undefined` otherwise.
 * - `containerId`: the id of the container `redis-server` runs in, `undefined` otherwise.
 * - `kind`: `"external"` (from `REDIS_URL`), `"spawned"` (a child process) or `"container"` (testcontainers).
 *
 * **Example** (Reading the server address in a test)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RedisTestServer } from "@leasehold/testing"
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* RedisTestServer.RedisTestServer
 *   console.log(server.kind, server.host, server.port)
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class RedisTestServer extends Context.Service<
  RedisTestServer,
  {
    readonly url: string
    readonly host: string
    readonly port: number
    readonly pid: number | undefined
    readonly containerId: string | undefined
    readonly kind: "spawned" | "external" | "container"
  }
>()("@leasehold/testing/RedisTestServer") {}

/**
 * Raised when no Redis server could be found or started; the message says what to do about it.
 *
 * **Details**
 *
 * When a spawned `redis-server` fails to start, the message includes its captured output.
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisTestServerError extends Schema.TaggedError<RedisTestServerError>()("RedisTestServerError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** How long a spawned `redis-server` may take to print its ready line. */
const READY_TIMEOUT = "10 seconds"
/** How long a spawned `redis-server` may take to exit after SIGTERM before it gets SIGKILL. */
const TERM_GRACE = "2 seconds"
/** How long to wait for the exit event after SIGKILL before giving up. */
const KILL_GRACE = "5 seconds"
/** Attempts at binding a free port, for the race between finding a port and redis binding it. */
const BIND_ATTEMPTS = 5
/** Attempts at binding a given port, while a killed predecessor still holds it. */
const REBIND_ATTEMPTS = 20
/** The pause between those attempts. */
const REBIND_SPACING = "50 millis"
/** Output kept from a spawned `redis-server` for error messages. */
const OUTPUT_LIMIT = 16 * 1024
const READY_LINE = "Ready to accept connections"
const ADDRESS_IN_USE = "Address already in use"
const NOT_FOUND_MESSAGE =
  "redis-server was not found on PATH, REDIS_URL is not set and no container runtime answered: " +
  "install it (apt-get install redis-server), set REDIS_URL (e.g. redis://127.0.0.1:6379) or start a container runtime"

/** Internal: redis-server lost the race for its port; the start is retried on another one. */
class PortInUse extends Data.TaggedError("PortInUse")<{ readonly port: number; readonly output: string }> {}

// ---------------------------------------------------------------------------
// (a) REDIS_URL
// ---------------------------------------------------------------------------

const fromUrl = (url: string): Effect.Effect<RedisTestServer["Service"], RedisTestServerError> => {
  // Neither the URL nor the parser's error (whose `input` holds the URL) goes into the error: it may hold a password.
  const invalid = (reason: string) =>
    Effect.fail(
      new RedisTestServerError({
        message: `REDIS_URL is set but ${reason}: fix it (e.g. redis://127.0.0.1:6379) or unset it`
      })
    )
  if (!URL.canParse(url)) return invalid("is not a valid URL")
  const parsed = new URL(url)
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")
    return invalid("is not a redis:// or rediss:// URL")
  return Effect.succeed(
    RedisTestServer.of({
      url,
      host: parsed.hostname,
      port: parsed.port === "" ? 6379 : Number(parsed.port),
      pid: undefined,
      containerId: undefined,
      kind: "external"
    })
  )
}

// ---------------------------------------------------------------------------
// (b) redis-server on PATH
// ---------------------------------------------------------------------------

const findOnPath = (name: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue
    const candidate = path.join(dir, name)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      if (fs.statSync(candidate).isFile()) return candidate
    } catch {
      // not here: try the next directory
    }
  }
  return undefined
}

/** Binds a server to port 0 on 127.0.0.1, reads the port the OS picked, and closes the server again. */
const freePort: Effect.Effect<number, RedisTestServerError> = Effect.callback((resume) => {
  const server = net.createServer()
  server.unref()
  server.once("error", (cause) => {
    resume(Effect.fail(new RedisTestServerError({ message: "Could not find a free port on 127.0.0.1", cause })))
  })
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : undefined
    server.close(() => {
      resume(
        port === undefined
          ? Effect.fail(new RedisTestServerError({ message: "Could not read the port of a probe server on 127.0.0.1" }))
          : Effect.succeed(port)
      )
    })
  })
  return Effect.sync(() => {
    server.close()
  })
})

interface ServerProcess {
  readonly child: ChildProcess
  readonly port: number
  /** The last `OUTPUT_LIMIT` characters of stdout and stderr. */
  readonly output: () => string
  /** The `error` event of the child, e.g. when it could not be spawned. */
  readonly spawnError: () => Error | undefined
}

const describeExit = (child: ChildProcess): string =>
  child.signalCode !== null ? `was killed by ${child.signalCode}` : `exited with code ${child.exitCode}`

/**
 * The arguments of every server this kit starts: `port` on 127.0.0.1 only, no snapshots, and no append-only file
 * unless `appendOnlyDir` names a directory to keep one in (fsync on every write).
 */
const serverArgs = (port: number, appendOnlyDir?: string) => [
  "--port",
  String(port),
  "--bind",
  "127.0.0.1",
  "--save",
  "",
  ...(appendOnlyDir === undefined
    ? ["--appendonly", "no"]
    : ["--appendonly", "yes", "--appendfsync", "always", "--dir", appendOnlyDir]),
  "--protected-mode",
  "no"
]

/** Spawns `redis-server` on `port`, capturing its output and killing it if the Node process exits. */
const spawnServer = (binary: string, port: number, appendOnlyDir: string | undefined) => {
  const child = spawn(binary, serverArgs(port, appendOnlyDir), { cwd: os.tmpdir(), stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  let spawnError: Error | undefined
  const capture = (chunk: string) => {
    output = (output + chunk).slice(-OUTPUT_LIMIT)
  }
  // Reading both pipes for the whole life of the child also keeps redis from blocking on a full pipe.
  child.stdout?.setEncoding("utf8").on("data", capture)
  child.stderr?.setEncoding("utf8").on("data", capture)
  // Without an `error` listener a failed spawn or kill would crash the process.
  child.on("error", (error) => {
    spawnError ??= error
  })
  const onProcessExit = () => {
    if (!hasExited(child)) child.kill("SIGKILL")
  }
  process.on("exit", onProcessExit)
  const handle: ServerProcess = { child, port, output: () => output, spawnError: () => spawnError }
  return { handle, onProcessExit }
}

/** SIGTERM, then SIGKILL if the child is still alive after `TERM_GRACE`; completes once it has exited. */
const stopServer = (child: ChildProcess): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (child.pid === undefined || hasExited(child)) return Effect.void
    child.kill("SIGTERM")
    return awaitExit(child).pipe(
      Effect.timeoutOrElse({
        duration: TERM_GRACE,
        orElse: () =>
          Effect.sync(() => child.kill("SIGKILL")).pipe(
            Effect.andThen(awaitExit(child)),
            Effect.timeoutOrElse({ duration: KILL_GRACE, orElse: () => Effect.void })
          )
      })
    )
  })

/** Waits for the ready line; fails if the child exits or cannot be spawned first. */
const awaitReady = (server: ServerProcess): Effect.Effect<void, RedisTestServerError | PortInUse> => {
  const { child, port } = server
  const exitedEarly = (): Effect.Effect<never, RedisTestServerError | PortInUse> => {
    const output = server.output()
    if (output.includes(ADDRESS_IN_USE)) return Effect.fail(new PortInUse({ port, output }))
    return Effect.fail(
      new RedisTestServerError({
        message: `redis-server ${describeExit(child)} before it was ready on 127.0.0.1:${port}. Output:\n${output}`
      })
    )
  }
  const spawnFailed = (cause: Error) =>
    Effect.fail(new RedisTestServerError({ message: `Could not run redis-server: ${cause.message}`, cause }))

  return Effect.callback<void, RedisTestServerError | PortInUse>((resume) => {
    const error = server.spawnError()
    if (error !== undefined) return resume(spawnFailed(error))
    if (server.output().includes(READY_LINE)) return resume(Effect.void)
    if (hasExited(child)) return resume(exitedEarly())
    // The capture listener was added first, so the output already holds the chunk when `onData` runs.
    const onData = () => {
      if (server.output().includes(READY_LINE)) resume(Effect.void)
    }
    const onExit = () => resume(exitedEarly())
    const onError = (cause: Error) => resume(spawnFailed(cause))
    child.stdout?.on("data", onData)
    child.once("exit", onExit)
    child.once("error", onError)
    return Effect.sync(() => {
      child.stdout?.off("data", onData)
      child.off("exit", onExit)
      child.off("error", onError)
    })
  }).pipe(
    Effect.timeoutOrElse({
      duration: READY_TIMEOUT,
      orElse: () =>
        Effect.fail(
          new RedisTestServerError({
            message:
              `redis-server did not print "${READY_LINE}" within ${READY_TIMEOUT} on 127.0.0.1:${port}. ` +
              `Output:\n${server.output()}`
          })
        )
    })
  )
}

/** One attempt on `port`: a child bound to the current scope, and its ready line. */
const startOn = (binary: string, port: number, appendOnlyDir?: string) =>
  Effect.gen(function* () {
    const { handle } = yield* Effect.acquireRelease(
      Effect.sync(() => spawnServer(binary, port, appendOnlyDir)),
      ({ handle, onProcessExit }) =>
        stopServer(handle.child).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              process.off("exit", onProcessExit)
            })
          )
        )
    )
    yield* awaitReady(handle)
    return handle
  })

/** One attempt: a free port, a child bound to the current scope, and its ready line. */
const startOnce = (binary: string, appendOnlyDir?: string) =>
  Effect.flatMap(freePort, (port) => startOn(binary, port, appendOnlyDir))

/** Starts on a free port, retrying on another one when redis lost the race for it. */
const startOnFreePort = (binary: string, appendOnlyDir?: string) =>
  startOnce(binary, appendOnlyDir).pipe(
    Effect.retry({ times: BIND_ATTEMPTS - 1, while: (error) => error._tag === "PortInUse" }),
    Effect.catchTag("PortInUse", (error) =>
      Effect.fail(
        new RedisTestServerError({
          message: `redis-server could not bind a free port on 127.0.0.1 in ${BIND_ATTEMPTS} attempts. Output:\n${error.output}`
        })
      )
    )
  )

/** Starts on `port`, retrying while a predecessor (just killed) still holds it. */
const startOnPort = (binary: string, port: number, appendOnlyDir?: string) =>
  startOn(binary, port, appendOnlyDir).pipe(
    Effect.retry({
      schedule: Schedule.spaced(REBIND_SPACING),
      times: REBIND_ATTEMPTS - 1,
      while: (error) => error._tag === "PortInUse"
    }),
    Effect.catchTag("PortInUse", (error) =>
      Effect.fail(
        new RedisTestServerError({
          message: `redis-server could not bind 127.0.0.1:${port} in ${REBIND_ATTEMPTS} attempts. Output:\n${error.output}`
        })
      )
    )
  )

const spawned = (binary: string): Effect.Effect<RedisTestServer["Service"], RedisTestServerError, Scope.Scope> =>
  startOnFreePort(binary).pipe(
    Effect.map(({ child, port }) =>
      RedisTestServer.of({
        url: `redis://127.0.0.1:${port}`,
        host: "127.0.0.1",
        port,
        pid: child.pid,
        containerId: undefined,
        kind: "spawned"
      })
    )
  )

// ---------------------------------------------------------------------------
// A redis-server of the test's own, to pause, kill and restart
// ---------------------------------------------------------------------------

/**
 * A `redis-server` child started by {@link startServer}.
 *
 * **Details**
 *
 * - `url`, `port`: where it listens (`redis://127.0.0.1:<port>`);
 * - `pid`: its process id, for signals (`SIGSTOP`, `SIGKILL`, ...);
 * - `exited`: completes once the process has exited, whatever stopped it (at once if it already has).
 *
 * @since 0.1.0
 * @category models
 */
export interface SpawnedServer {
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly exited: Effect.Effect<void>
}

/**
 * Whether a `redis-server` binary is on `PATH`, which {@link startServer} needs (`REDIS_URL` and containers do not
 * count). Tests that signal the server process can skip themselves without it.
 *
 * @since 0.1.0
 * @category utils
 */
export const hasServerBinary = (): boolean => findOnPath("redis-server") !== undefined

/**
 * Starts a private `redis-server` from `PATH` on 127.0.0.1, whatever `REDIS_URL` says: on `options.port` when
 * given, else on a free port. Same flags (no persistence) and readiness wait as {@link layerServer}; stopped
 * (SIGTERM, then SIGKILL) when the scope closes, and killed if the Node process exits first. With
 * `options.appendOnlyDir`, the server keeps an append-only file there (`appendfsync always`): a server started
 * again on that directory, even after `SIGKILL`, has every write the last one acknowledged.
 *
 * **When to use**
 *
 * When a test must own the process: pause it, kill it, start a new one on the port its clients know (see
 * `RedisFaults`). On a given port, a start that finds the port still taken (a killed predecessor releasing it) is
 * retried for about a second.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startServer = (options?: {
  readonly port?: number | undefined
  readonly appendOnlyDir?: string | undefined
}): Effect.Effect<SpawnedServer, RedisTestServerError, Scope.Scope> =>
  Effect.suspend(() => {
    const binary = findOnPath("redis-server")
    if (binary === undefined)
      return Effect.fail(
        new RedisTestServerError({
          message: "redis-server was not found on PATH: install it (apt-get install redis-server)"
        })
      )
    const port = options?.port
    const dir = options?.appendOnlyDir
    return (port === undefined ? startOnFreePort(binary, dir) : startOnPort(binary, port, dir)).pipe(
      Effect.map(({ child, port }) => ({
        url: `redis://127.0.0.1:${port}`,
        port,
        pid: child.pid!,
        exited: awaitExit(child)
      }))
    )
  })

// ---------------------------------------------------------------------------
// (c) testcontainers
// ---------------------------------------------------------------------------

/**
 * Options of the container path: {@link layerContainer}, and {@link layerServer} when it falls back to a container.
 *
 * **Details**
 *
 * - `image`: the image to run; it must have `redis-server` on its `PATH`. Default: the `LEASEHOLD_REDIS_IMAGE`
 *   environment variable when set, else `redis:7`. Where no registry is reachable, import one built from the
 *   machine's own `redis-server` (the repository's `scripts/docker-redis.sh` makes `leasehold/redis-test:local`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ContainerOptions {
  readonly image?: string | undefined
}

/** The image when neither the option nor `LEASEHOLD_REDIS_IMAGE` names one. */
const DEFAULT_IMAGE = "redis:7"
/** How long a container may take to start, image pull included; its ready line has `READY_TIMEOUT` of it. */
const CONTAINER_START_TIMEOUT = "60 seconds"
/** How long stopping and removing the container may take when the layer closes. */
const CONTAINER_STOP_TIMEOUT = "30 seconds"
const NO_REGISTRY_HINT =
  "Where no registry is reachable, import an image locally (the leasehold repository's scripts/docker-redis.sh " +
  "does), name it with the image option or LEASEHOLD_REDIS_IMAGE, and set TESTCONTAINERS_RYUK_DISABLED=true"

const imageOf = (options: ContainerOptions | undefined): string =>
  options?.image ?? (process.env.LEASEHOLD_REDIS_IMAGE || DEFAULT_IMAGE)

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** What to say when testcontainers or a container runtime is missing: asked for explicitly, or as the last resort. */
interface MissingRuntime {
  readonly noPackage: (cause: unknown) => RedisTestServerError
  readonly noRuntime: (cause: unknown) => RedisTestServerError
}

const lastResort: MissingRuntime = {
  noPackage: (cause) => new RedisTestServerError({ message: NOT_FOUND_MESSAGE, cause }),
  noRuntime: (cause) => new RedisTestServerError({ message: NOT_FOUND_MESSAGE, cause })
}

const askedFor: MissingRuntime = {
  noPackage: (cause) =>
    new RedisTestServerError({
      message:
        "RedisTestServer.layerContainer needs testcontainers, an optional peer dependency of @leasehold/testing: " +
        "install it (npm i -D testcontainers)",
      cause
    }),
  noRuntime: (cause) =>
    new RedisTestServerError({
      message:
        `RedisTestServer.layerContainer found no container runtime (${messageOf(cause)}): start Docker or Podman, ` +
        "or use RedisTestServer.layer with redis-server on PATH",
      cause
    })
}

/** testcontainers, loaded only here (it is an optional peer), and a container runtime that answers. */
const loadTestcontainers = (missing: MissingRuntime) =>
  Effect.gen(function* () {
    const tc = yield* Effect.tryPromise({ try: () => import("testcontainers"), catch: missing.noPackage })
    yield* Effect.tryPromise({ try: () => tc.getContainerRuntimeClient(), catch: missing.noRuntime })
    return tc
  })

type Testcontainers = Effect.Success<ReturnType<typeof loadTestcontainers>>

/**
 * One attempt: `image` running `redis-server` on a free port of 127.0.0.1, in the host's network namespace (never a
 * bridge network), stopped and removed when the scope closes: also when the start is interrupted or times out, once
 * testcontainers has finished it.
 */
const startContainerOnce = (tc: Testcontainers, image: string) =>
  Effect.gen(function* () {
    const port = yield* freePort
    let output = ""
    const started = yield* Effect.try({
      try: () =>
        new tc.GenericContainer(image)
          .withNetworkMode("host")
          .withCommand(["redis-server", ...serverArgs(port)])
          .withWaitStrategy(tc.Wait.forLogMessage(READY_LINE))
          .withStartupTimeout(Duration.toMillis(READY_TIMEOUT))
          .withLogConsumer((stream) => {
            stream.on("data", (chunk: Buffer | string) => {
              output = (output + String(chunk)).slice(-OUTPUT_LIMIT)
            })
          })
          .start(),
      catch: (cause) =>
        new RedisTestServerError({ message: `Could not run a ${image} container: ${messageOf(cause)}`, cause })
    })
    // Handled here so that a start nobody awaits any more (interrupted) is not an unhandled rejection.
    started.catch(() => undefined)
    yield* Effect.addFinalizer(() =>
      Effect.promise(() =>
        started.then(
          (container) => container.stop(),
          () => undefined
        )
      ).pipe(Effect.timeoutOrElse({ duration: CONTAINER_STOP_TIMEOUT, orElse: () => Effect.void }), Effect.ignoreCause)
    )
    const container = yield* Effect.tryPromise({
      try: () => started,
      catch: (cause): RedisTestServerError | PortInUse =>
        output.includes(ADDRESS_IN_USE)
          ? new PortInUse({ port, output })
          : new RedisTestServerError({
              message:
                `Could not start redis-server in a ${image} container on 127.0.0.1:${port}: ${messageOf(cause)}. ` +
                `${NO_REGISTRY_HINT}.${output === "" ? "" : ` Output:\n${output}`}`,
              cause
            })
    }).pipe(
      Effect.timeoutOrElse({
        duration: CONTAINER_START_TIMEOUT,
        orElse: () =>
          Effect.fail(
            new RedisTestServerError({
              message: `A ${image} container did not start within ${CONTAINER_START_TIMEOUT}. ${NO_REGISTRY_HINT}`
            })
          )
      })
    )
    return RedisTestServer.of({
      url: `redis://127.0.0.1:${port}`,
      host: "127.0.0.1",
      port,
      pid: undefined,
      containerId: container.getId(),
      kind: "container"
    })
  })

const container = (
  image: string,
  missing: MissingRuntime
): Effect.Effect<RedisTestServer["Service"], RedisTestServerError, Scope.Scope> =>
  Effect.gen(function* () {
    if (image.trim() === "")
      return yield* new RedisTestServerError({
        message: `The container image is empty: name one (e.g. ${DEFAULT_IMAGE}) or leave the option unset`
      })
    const tc = yield* loadTestcontainers(missing)
    return yield* startContainerOnce(tc, image).pipe(
      Effect.retry({ times: BIND_ATTEMPTS - 1, while: (error) => error._tag === "PortInUse" }),
      Effect.catchTag("PortInUse", (error) =>
        Effect.fail(
          new RedisTestServerError({
            message: `redis-server in a ${image} container could not bind a free port on 127.0.0.1 in ${BIND_ATTEMPTS} attempts. Output:\n${error.output}`
          })
        )
      )
    )
  })

/**
 * Provides {@link RedisTestServer}: `REDIS_URL` if set, else a `redis-server` from `PATH` on a free port of
 * 127.0.0.1, else a container (see {@link layerContainer}; image from `LEASEHOLD_REDIS_IMAGE`, else `redis:7`)
 * when testcontainers is installed and a container runtime answers.
 *
 * **Details**
 *
 * A spawned server runs with `--save "" --appendonly no --protected-mode no`, bound to 127.0.0.1 only. Building
 * the layer waits (at most 10 seconds) until it prints "Ready to accept connections". Closing the layer scope sends
 * SIGTERM, then SIGKILL after 2 seconds, and waits for the process to exit; if the Node process exits first, the
 * server is killed too.
 *
 * Build it once per test file (e.g. with `layer` from `@effect/vitest` and `excludeTestServices: true`, so the
 * readiness timeout runs on the real clock).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer: Layer.Layer<RedisTestServer, RedisTestServerError> = Layer.effect(
  RedisTestServer,
  Effect.suspend(() => {
    const url = process.env.REDIS_URL
    if (url !== undefined && url !== "") return fromUrl(url)
    const binary = findOnPath("redis-server")
    return binary !== undefined ? spawned(binary) : container(imageOf(undefined), lastResort)
  })
)

/**
 * What the kit's clients provide: Effect's `Redis.Redis`, the raw `NodeRedis.NodeRedis` client, and leasehold's
 * `RedisTransport` over it (the stack `NodeRedisClient.layer` of `@leasehold/node-redis` builds).
 */
export type Clients = Redis.Redis | NodeRedis.NodeRedis | RedisTransport.RedisTransport

/** leasehold's transport over the `NodeRedis` client in context. */
const transportOverClient: Layer.Layer<RedisTransport.RedisTransport, never, NodeRedis.NodeRedis | Redis.Redis> =
  Layer.effect(
    RedisTransport.RedisTransport,
    Effect.flatMap(Effect.service(NodeRedis.NodeRedis), ({ client }) => RedisTransport.fromNodeRedisClient(client))
  ).pipe(Layer.orDie)

/**
 * A node-redis client (`NodeRedis.layer` with these options) with leasehold's transport over it (see `Clients`):
 * what a test needs to build its own client the way `NodeRedisClient.layer` of `@leasehold/node-redis` does.
 *
 * ```ts
 * const client = RedisTestServer.layerClient({ url, disableOfflineQueue: true })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerClient = (
  options: NonNullable<Parameters<typeof NodeRedis.layer>[0]>
): Layer.Layer<Clients, Redis.RedisError> => Layer.provideMerge(transportOverClient, NodeRedis.layer(options))

/** `server` plus a connected `Redis.Redis` (with the raw client and leasehold's transport) pointed at it. */
const withClient = (
  server: Layer.Layer<RedisTestServer, RedisTestServerError>
): Layer.Layer<Clients | RedisTestServer, RedisTestServerError | Redis.RedisError> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const { url } = yield* RedisTestServer
      // Without the offline queue, a command sent while the server is down fails at once instead of waiting for a
      // reconnect, and closing the client cannot hang on commands queued for a server that is gone.
      return layerClient({ url, disableOfflineQueue: true })
    })
  ).pipe(Layer.provideMerge(server))

/**
 * {@link layerServer} plus a connected `Redis.Redis`, the raw `NodeRedis.NodeRedis` client, and leasehold's
 * `RedisTransport` over it (see `Clients`), pointed at it.
 *
 * **Example** (A test file against a real Redis)
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import * as Redis from "effect/persistence/Redis"
 * import { RedisTestServer } from "@leasehold/testing"
 *
 * layer(RedisTestServer.layer, { excludeTestServices: true })("redis", (it) => {
 *   it.effect("answers PING", () =>
 *     Effect.gen(function*() {
 *       const redis = yield* Redis.Redis
 *       assert.strictEqual(yield* redis.send<string>("PING"), "PONG")
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Clients | RedisTestServer, RedisTestServerError | Redis.RedisError> =
  withClient(layerServer)

/**
 * Like {@link layer}, but always in a container, whatever `REDIS_URL` and `PATH` hold: `redis-server` runs in
 * `options.image` (default `LEASEHOLD_REDIS_IMAGE`, else `redis:7`) through testcontainers, which is loaded only
 * here (an optional peer dependency: install it to use this layer).
 *
 * **Details**
 *
 * - The container uses the host's network (`--network host`), never a bridge: the server listens on a free port of
 *   127.0.0.1 with the same flags as a spawned one, so `url` is `redis://127.0.0.1:<port>` and `containerId` names
 *   the container.
 * - Building the layer waits for the ready line (10 seconds, within 60 for the whole start, an image pull
 *   included); closing it stops and removes the container.
 * - Without a registry: import an image of the machine's own `redis-server` (`scripts/docker-redis.sh` in the
 *   leasehold repository does), and set `TESTCONTAINERS_RYUK_DISABLED=true` (Ryuk's image cannot be pulled either)
 *   and `TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1`. Without Ryuk, a container outlives a Node process that is
 *   killed before the layer closes.
 *
 * **Example** (A test file against Redis in a container)
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import * as Redis from "effect/persistence/Redis"
 * import { RedisTestServer } from "@leasehold/testing"
 *
 * layer(RedisTestServer.layerContainer({ image: "redis:7.2" }), { excludeTestServices: true })("redis", (it) => {
 *   it.effect("answers PING", () =>
 *     Effect.gen(function*() {
 *       const redis = yield* Redis.Redis
 *       assert.strictEqual(yield* redis.send<string>("PING"), "PONG")
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerContainer = (
  options?: ContainerOptions
): Layer.Layer<Clients | RedisTestServer, RedisTestServerError | Redis.RedisError> =>
  withClient(
    Layer.effect(
      RedisTestServer,
      Effect.suspend(() => container(imageOf(options), askedFor))
    )
  )

/**
 * A client of `url` for tests that break the connection on purpose: it never offline-queues (a command sent while
 * disconnected fails at once), it is destroyed rather than drained when the scope closes (closing never waits for
 * replies a fault withholds), and its warnings about connections lost on purpose are not logged. Provides `Redis`
 * and `NodeRedis`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectDisposable = (
  url: string
): Effect.Effect<Context.Context<Clients>, Redis.RedisError, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(layerClient({ url, disableOfflineQueue: true })).pipe(
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
    const { client } = Context.get(context, NodeRedis.NodeRedis)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
    return context
  })

/**
 * Sends `FLUSHALL`: removes every key of every database, so tests sharing one server start from an empty one.
 *
 * **Details**
 *
 * With `REDIS_URL` this empties that server too: point it at a server that holds nothing of value.
 *
 * **Example** (Isolating tests of one file)
 *
 * ```ts
 * it.effect("starts empty", () =>
 *   Effect.gen(function*() {
 *     yield* RedisTestServer.flushAll
 *     // ...
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const flushAll: Effect.Effect<void, Redis.RedisError, Redis.Redis> = Effect.gen(function* () {
  const redis = yield* Redis.Redis
  yield* redis.send("FLUSHALL")
})
