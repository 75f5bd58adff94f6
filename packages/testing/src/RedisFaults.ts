/**
 * Faults of the Redis server itself, for chaos tests, on a private `redis-server` of the test's own: pause it
 * (`SIGSTOP`, every command waits) and resume it (`SIGCONT`), kill it (`SIGKILL`, a crash without persistence:
 * every lease vanishes) and start it again, empty, on the same port, so clients that know its address reconnect
 * to it. With `layerWith({ appendOnly: true })` the server keeps an append-only file (`appendfsync always`), and a
 * restarted server comes back with every write the killed one acknowledged.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RedisFaults } from "@leasehold/testing"
 *
 * const program = Effect.gen(function* () {
 *   const redis = yield* RedisFaults.RedisFaults
 *   // paused for a second, resumed when the scope closes, even if the test fails meanwhile
 *   yield* Effect.scoped(Effect.andThen(redis.pause, Effect.sleep("1 second")))
 *   yield* redis.restart
 * }).pipe(Effect.provide(RedisFaults.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Exit, Layer, Scope, Semaphore } from "effect"
import { awaitStopped } from "./ChildProcesses.ts"
import { type RedisTestServerError, type SpawnedServer, startServer } from "./RedisTestServer.ts"

/**
 * The faulty server and what can be done to it.
 * - `url`, `host`, `port`: where it listens; the port stays the same across restarts;
 * - `pid`: the current process, `undefined` while it is killed;
 * - `pause`: `SIGSTOP` now (and wait until the process is stopped), `SIGCONT` when the scope closes (or at
 *   `resume`). A paused server accepts
 *   connections and bytes but answers nothing; the finalizer guarantees that no test leaves it stopped;
 * - `resume`: `SIGCONT` at once, if paused;
 * - `kill`: `SIGKILL` (paused or not), and wait until the process has exited: every key is gone (unless the
 *   server keeps an append-only file, see `Options`);
 * - `start`: start a new server on the same port, if it is killed: empty, or with the append-only file's data;
 * - `restart`: `kill`, then `start`.
 *
 * Each operation is idempotent (pausing a paused server, killing a killed one, starting a running one do nothing),
 * and they run one at a time.
 *
 * @category services
 * @since 0.1.0
 */
export class RedisFaults extends Context.Service<
  RedisFaults,
  {
    readonly url: string
    readonly host: string
    readonly port: number
    readonly pid: Effect.Effect<number | undefined>
    readonly pause: Effect.Effect<void, never, Scope.Scope>
    readonly resume: Effect.Effect<void>
    readonly kill: Effect.Effect<void>
    readonly start: Effect.Effect<void, RedisTestServerError>
    readonly restart: Effect.Effect<void, RedisTestServerError>
  }
>()("@leasehold/testing/RedisFaults") {}

/** How long a killed server may take to report its exit. */
const EXIT_TIMEOUT = "5 seconds"

interface Running {
  readonly server: SpawnedServer
  readonly scope: Scope.Closeable
  /** The pause that stopped it, if any: only that pause's finalizer resumes it. */
  pausedBy: number | undefined
}

/** Sends a signal to a server that may have died meanwhile. */
const signal = (running: Running, name: NodeJS.Signals) =>
  Effect.sync(() => {
    try {
      process.kill(running.server.pid, name)
    } catch {
      // already gone: nothing to signal
    }
  })

/**
 * Options of the faulty server.
 * - `appendOnly` (default `false`): keep an append-only file, fsynced on every write, in a private directory that
 *   lives as long as the service, so that a killed and started server has every write it acknowledged (Redis with
 *   persistence after a crash).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly appendOnly?: boolean | undefined
}

/** A private directory for the append-only file, removed when the scope closes. */
const appendOnlyDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "leasehold-aof-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * Starts a private `redis-server` (from `PATH`, on a free port of 127.0.0.1) as `options` say and returns its
 * faults. When the scope closes, a paused server is resumed first, then the server is stopped.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeWith = (options?: Options): Effect.Effect<RedisFaults["Service"], RedisTestServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const lock = yield* Semaphore.make(1)
    let running: Running | undefined
    let pauses = 0
    const dir = options?.appendOnly === true ? yield* appendOnlyDir : undefined

    const launch = (port?: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const server = yield* startServer({ port, appendOnlyDir: dir }).pipe(
          Scope.provide(scope),
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        running = { server, scope, pausedBy: undefined }
        return server
      })

    const resumeIf = (pause: number | undefined) =>
      Effect.suspend(() => {
        const current = running
        if (current === undefined || current.pausedBy === undefined) return Effect.void
        if (pause !== undefined && current.pausedBy !== pause) return Effect.void
        current.pausedBy = undefined
        return signal(current, "SIGCONT")
      })

    const { port, url } = yield* launch()
    yield* Effect.addFinalizer(() =>
      lock.withPermit(
        Effect.andThen(
          resumeIf(undefined),
          Effect.suspend(() => (running === undefined ? Effect.void : Scope.close(running.scope, Exit.void)))
        )
      )
    )

    const pause = Effect.acquireRelease(
      lock.withPermit(
        Effect.suspend(() => {
          const current = running
          if (current === undefined || current.pausedBy !== undefined) return Effect.succeed(undefined)
          const id = ++pauses
          current.pausedBy = id
          return signal(current, "SIGSTOP").pipe(Effect.andThen(awaitStopped(current.server.pid)), Effect.as(id))
        })
      ),
      (id) => (id === undefined ? Effect.void : lock.withPermit(resumeIf(id)))
    ).pipe(Effect.asVoid)

    const kill = Effect.suspend(() => {
      const current = running
      if (current === undefined) return Effect.void
      running = undefined
      return signal(current, "SIGKILL").pipe(
        Effect.andThen(Effect.timeoutOption(current.server.exited, EXIT_TIMEOUT)),
        Effect.andThen(Scope.close(current.scope, Exit.void))
      )
    })

    const start = Effect.suspend(() => (running === undefined ? Effect.asVoid(launch(port)) : Effect.void))

    return RedisFaults.of({
      url,
      host: "127.0.0.1",
      port,
      pid: Effect.sync(() => running?.server.pid),
      pause,
      resume: lock.withPermit(resumeIf(undefined)),
      kill: lock.withPermit(kill),
      start: lock.withPermit(start),
      restart: lock.withPermit(Effect.andThen(kill, start))
    })
  })

/**
 * Starts a private `redis-server` without persistence and returns its faults (see `makeWith`).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: Effect.Effect<RedisFaults["Service"], RedisTestServerError, Scope.Scope> = makeWith()

/**
 * Provides {@link RedisFaults} over a private `redis-server` for the life of the layer (see {@link make}). It needs
 * `redis-server` on `PATH` (`RedisTestServer.hasServerBinary()`); `REDIS_URL` is not used, since an external
 * server cannot be signalled.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<RedisFaults, RedisTestServerError> = Layer.effect(RedisFaults, make)

/**
 * Provides {@link RedisFaults} over a private `redis-server` started as `options` say (see {@link makeWith}).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerWith = (options: Options): Layer.Layer<RedisFaults, RedisTestServerError> =>
  Layer.effect(RedisFaults, makeWith(options))
