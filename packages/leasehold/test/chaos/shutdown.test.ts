import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { ChildProcesses, RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Context, Deferred, Effect, Exit, Fiber, Layer, References, Schedule, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseStore } from "leasehold"
import type { Fault, ShutdownConfig, ShutdownLine } from "./shutdownProtocol.ts"
import { freshKey, leaseRedisKey, nowMillis, reasonOf } from "./support.ts"

const program = path.join(path.dirname(fileURLToPath(import.meta.url)), "shutdownWorker.ts")

const COMMAND_TIMEOUT = 500
/** Whatever Redis does, closing the layers must end within the command timeout plus one second. */
const CLOSE_BOUND = COMMAND_TIMEOUT + 1_000
/**
 * How long a program may take to return from `withLease` (its lease lives 1 s, its work at most 3 s; the rest is
 * room for a machine busy with other tests), and to exit after that, before it counts as hung.
 */
const RETURN_LIMIT = 60_000
const EXIT_LIMIT = 10_000

/** The program's outcome: its lines, its exit code, and whether it had to be killed. */
interface Run {
  readonly label: string
  readonly lines: ReadonlyArray<ShutdownLine>
  readonly code: number | null
  readonly hung: boolean
  readonly stderr: string
}

/**
 * A proxy that forwards to `target` until `garble`, then answers every chunk from the server with bytes that are not
 * RESP (the client's decoder throws on them).
 */
const garblingProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.gen(function* () {
    let garbled = false
    const sockets = new Set<net.Socket>()
    const server = net.createServer((client) => {
      const upstream = net.connect(target)
      sockets.add(client).add(upstream)
      client.on("data", (chunk) => upstream.write(chunk))
      upstream.on("data", (chunk) => client.write(garbled ? Buffer.from("?not RESP\r\n") : chunk))
      client.on("error", () => {})
      upstream.on("error", () => {})
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
      }),
      () =>
        Effect.sync(() => {
          for (const socket of sockets) socket.destroy()
          server.close()
        })
    )
    return {
      url: `redis://127.0.0.1:${port}`,
      garble: Effect.sync(() => {
        garbled = true
      })
    }
  })

/** Runs the program once against a fresh redis-server, with `fault` (and the proxy it needs) from 50 ms in. */
const runOnce = (fault: Fault, disableOfflineQueue: boolean, workMillis: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const redis = yield* RedisTestServer.startServer()
      // The parent resumes a server the program paused, so that the server's own shutdown can run.
      yield* Effect.addFinalizer(() => Effect.sync(() => signal(redis.pid, "SIGCONT")))
      const target = { host: "127.0.0.1", port: redis.port }
      let url = redis.url
      let onFault: Effect.Effect<void> = Effect.void
      if (fault === "blackhole" || fault === "late") {
        const proxy = yield* TcpProxy.make(target)
        url = proxy.url
        onFault = fault === "blackhole" ? proxy.blackhole : proxy.setLatency({ toClient: "10 seconds" })
      } else if (fault === "garbage") {
        const proxy = yield* garblingProxy(target)
        url = proxy.url
        onFault = proxy.garble
      }
      const config: ShutdownConfig = {
        url,
        redisPid: redis.pid,
        disableOfflineQueue,
        commandTimeoutMillis: COMMAND_TIMEOUT,
        fault,
        workMillis
      }
      const label = `${fault}, offline queue ${disableOfflineQueue ? "off" : "on"}, work ${workMillis} ms`
      return yield* runProgram(label, config, onFault)
    })
  )

const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

const runProgram = (label: string, config: ShutdownConfig, onFault: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [program, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] })
      ),
      (child) => Effect.sync(() => ChildProcesses.hasExited(child) || child.kill("SIGKILL"))
    )
    const lines: Array<ShutdownLine> = []
    const returned = Deferred.makeUnsafe<void>()
    let stderr = ""
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-4_096)
    })
    readline.createInterface({ input: child.stdout! }).on("line", (text) => {
      if (!text.startsWith('{"type"')) return
      const line = JSON.parse(text) as ShutdownLine
      lines.push(line)
      if (line.type === "returned") Deferred.doneUnsafe(returned, Effect.void)
      if (line.type === "fault") Effect.runFork(onFault)
    })
    const closed = Effect.callback<number | null>((resume) => {
      child.once("close", (code) => resume(Effect.succeed(code)))
    })
    const code = yield* Effect.raceFirst(
      Effect.asSome(closed),
      Effect.timeoutOption(Deferred.await(returned), RETURN_LIMIT).pipe(
        Effect.andThen(Effect.timeoutOption(closed, EXIT_LIMIT))
      )
    )
    if (code._tag === "None") child.kill("SIGKILL")
    return {
      label,
      lines,
      code: code._tag === "Some" ? code.value : null,
      hung: code._tag === "None",
      stderr
    } satisfies Run
  })

/** What a run got wrong (`problem`), or the time its layers took to close (`closeMillis`). */
const check = (run: Run, expected: "success" | "LeaseLost") => {
  const returned = run.lines.find((line) => line.type === "returned")
  const closed = run.lines.find((line) => line.type === "closed")
  const seen = `lines ${JSON.stringify(run.lines)}, exit code ${run.code}${run.hung ? " (hung, killed)" : ""}`
  if (returned === undefined || closed === undefined)
    return { problem: `${run.label}: the program's result was lost: ${seen}. stderr: ${run.stderr}` }
  const closeMillis = closed.at - returned.at
  const outcome = returned.outcome === "success" ? "success" : returned.detail
  if (outcome !== expected) return { problem: `${run.label}: expected ${expected}, got ${outcome}: ${seen}` }
  const code = expected === "success" ? 0 : 1
  if (run.code !== code) return { problem: `${run.label}: exit code ${run.code}, expected ${code}: ${seen}` }
  if (closeMillis > CLOSE_BOUND)
    return { problem: `${run.label}: the layers took ${closeMillis} ms to close (bound ${CLOSE_BOUND} ms): ${seen}` }
  return { closeMillis }
}

/**
 * Runs every variant of `fault` (offline queue on and off; work that outlives its lease and work that ends at once),
 * `repeat` times each, a few at a time, and checks them all.
 */
const everyVariant = (fault: Fault, repeat = 1) =>
  Effect.gen(function* () {
    const variants = [true, false].flatMap((disableOfflineQueue) =>
      [
        { workMillis: 3_000, expected: "LeaseLost" as const },
        { workMillis: 100, expected: "success" as const }
      ].flatMap((work) => Array.from({ length: repeat }, () => ({ disableOfflineQueue, ...work })))
    )
    const results = yield* Effect.forEach(
      variants,
      (variant) =>
        Effect.map(runOnce(fault, variant.disableOfflineQueue, variant.workMillis), (run) => ({
          run,
          result: check(run, variant.expected)
        })),
      { concurrency: 2 }
    )
    const problems = results.flatMap(({ result }) => ("problem" in result ? [result.problem] : []))
    const closeTimes = results.map(
      ({ run, result }) => `${run.label}: ${"closeMillis" in result ? `${result.closeMillis} ms` : "failed"}`
    )
    console.log(`close times (${fault}):\n  ${closeTimes.join("\n  ")}`)
    assert.deepStrictEqual(problems, [])
  })

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: shutdown always settles, and no result is lost", () => {
  it.live(
    "Redis paused mid-hold, then resumed and killed at once after withLease returned: the result is delivered, the layers close within the bound",
    () => everyVariant("pause-then-kill", 3),
    120_000
  )
  it.live("Redis paused mid-hold and for good: the layers close within the bound", () => everyVariant("pause"), 120_000)
  it.live(
    "Redis killed mid-hold: the result is delivered, the layers close within the bound",
    () => everyVariant("kill"),
    120_000
  )
  it.live(
    "Redis partitioned mid-hold (blackhole): the layers close within the bound",
    () => everyVariant("blackhole"),
    120_000
  )
  it.live(
    "Redis answering bytes that are not RESP: the layers close within the bound",
    () => everyVariant("garbage"),
    120_000
  )
  it.live(
    "Redis answering long after the command timeout: the layers close within the bound",
    () => everyVariant("late"),
    120_000
  )
})

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: no command stays queued past its bound", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("offline queue", (it) => {
    it.effect(
      "an acquire sent while the client reconnects fails within its bound and never reaches Redis after the reconnect",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            // The README's client, the offline queue on: without the store's standby, commands would wait in it while it reconnects.
            const context = yield* Layer.build(
              Lease.layer.pipe(
                Layer.provideMerge(LeaseStore.layerRedis({ commandTimeout: `${COMMAND_TIMEOUT} millis` })),
                Layer.provideMerge(RedisTestServer.layerClient({ url: redis.url }))
              )
            ).pipe(Effect.provideService(References.MinimumLogLevel, "None"))
            const client = Context.get(context, Redis.Redis)
            const run = <A, E>(effect: Effect.Effect<A, E, Lease.Lease>) => Effect.provide(effect, context)
            const key = freshKey("queued-acquire")
            assert.strictEqual(yield* client.send<string>("PING"), "PONG")

            yield* redis.kill
            const { client: nodeClient } = Context.get(context, NodeRedis.NodeRedis)
            yield* Effect.suspend(() => (nodeClient.isReady ? Effect.fail("ready") : Effect.void)).pipe(
              Effect.retry({ schedule: Schedule.spaced("5 millis"), times: 1_000 })
            )
            const sentAt = yield* nowMillis
            const exit = yield* Effect.exit(run(Lease.acquire(key, "30 seconds")))
            const failedAfter = (yield* nowMillis) - sentAt
            // It goes over the store's standby connection, which finds Redis down at once (or gives up at the bound).
            assert.strictEqual(reasonOf(exit)._tag, "StoreUnavailable")
            assert.isBelow(failedAfter, COMMAND_TIMEOUT + 500)

            yield* redis.start
            // PING goes behind whatever is still queued in the client: once it is answered, a queued acquire has run.
            yield* client
              .send<string>("PING")
              .pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }), Effect.timeout("10 seconds"))
            const other = yield* RedisTestServer.connectDisposable(redis.url)
            const check = Context.get(other, Redis.Redis)
            assert.strictEqual(yield* check.send<number>("EXISTS", leaseRedisKey(key)), 0, "no lease for a ghost token")
            assert.strictEqual(
              yield* check.send<string | null>("GET", `${leaseRedisKey(key)}:fence`),
              null,
              "no acquire ran"
            )
          })
        ),
      30_000
    )
  })
})

/** The README's client over `url` in `clientScope`, and a `Lease` layer over it in a scope of its own. */
const storeOverClient = (url: string, clientScope: Scope.Scope) =>
  Effect.gen(function* () {
    const client = yield* Layer.buildWithScope(RedisTestServer.layerClient({ url }), clientScope)
    const storeScope = yield* Scope.make()
    const lease = yield* Layer.buildWithScope(
      Lease.layer.pipe(Layer.provide(LeaseStore.layerRedis({ commandTimeout: `${COMMAND_TIMEOUT} millis` }))),
      storeScope
    ).pipe(Effect.provide(client))
    const closeStore = Effect.gen(function* () {
      const from = yield* nowMillis
      yield* Scope.close(storeScope, Exit.void)
      return (yield* nowMillis) - from
    })
    return { client, lease, closeStore }
  }).pipe(Effect.provideService(References.MinimumLogLevel, "None"))

describe.skipIf(!RedisTestServer.hasServerBinary())(
  "chaos: the store's close waits for its commands, within their bound",
  () => {
    layer(RedisFaults.layer, { excludeTestServices: true })("close", (it) => {
      it.effect("a reply that comes within the bound: the close waits for it, and leaves the client working", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            const { client, lease, closeStore } = yield* storeOverClient(proxy.url, yield* Effect.scope)
            yield* proxy.setLatency({ toClient: "300 millis" })
            const inspect = yield* Effect.forkChild(Effect.provide(Lease.inspect(freshKey("close-waits")), lease))
            yield* Effect.sleep("50 millis")
            const took = yield* closeStore
            assert.isAtLeast(took, 200, `the close waited for the reply: ${took} ms`)
            assert.isBelow(took, COMMAND_TIMEOUT, `and no longer: ${took} ms`)
            assert.isTrue(Exit.isSuccess(yield* Fiber.await(inspect)), "the reply reached its caller")
            yield* proxy.heal
            assert.strictEqual(yield* Context.get(client, Redis.Redis).send<string>("PING"), "PONG", "the client works")
          })
        )
      )

      it.effect(
        "Redis silent (a partition): the close ends at the command's bound, and the client's own close at once",
        () =>
          Effect.scoped(
            Effect.gen(function* () {
              const redis = yield* RedisFaults.RedisFaults
              const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
              const clientScope = yield* Scope.make()
              const { client, lease, closeStore } = yield* storeOverClient(proxy.url, clientScope)
              yield* proxy.blackhole
              const sentAt = yield* nowMillis
              const inspect = yield* Effect.forkChild(Effect.provide(Lease.inspect(freshKey("close-silent")), lease))
              yield* Effect.sleep("100 millis")
              yield* closeStore
              const bound = (yield* nowMillis) - sentAt
              assert.isAtLeast(bound, COMMAND_TIMEOUT - 5, `the close ended ${bound} ms after the command was sent`)
              assert.isBelow(bound, COMMAND_TIMEOUT + 200, `the close ended ${bound} ms after the command was sent`)
              assert.strictEqual(reasonOf(yield* Fiber.await(inspect))._tag, "StoreUnavailable")
              assert.isFalse(Context.get(client, NodeRedis.NodeRedis).client.isOpen, "the silent client was destroyed")
              const from = yield* nowMillis
              yield* Scope.close(clientScope, Exit.void)
              assert.isBelow((yield* nowMillis) - from, 100, "NodeRedis's own close has nothing left to wait for")
            })
          )
      )
    })
  }
)
