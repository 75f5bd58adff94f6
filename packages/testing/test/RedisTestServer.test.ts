import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Redis from "effect/persistence/Redis"
import * as RedisTestServer from "../src/RedisTestServer.ts"

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false
    throw error
  }
}

layer(RedisTestServer.layer, { excludeTestServices: true })("RedisTestServer.layer", (it) => {
  it.effect("answers PING with PONG through Redis.send", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const reply = yield* redis.send<string>("PING")
      assert.strictEqual(reply, "PONG")
    })
  )

  it.effect("describes the server it connected to", () =>
    Effect.gen(function* () {
      const server = yield* RedisTestServer.RedisTestServer
      const url = new URL(server.url)
      assert.strictEqual(Number(url.port), server.port)
      assert.strictEqual(url.hostname, server.host)
      if (server.kind === "spawned") {
        assert.strictEqual(server.url, `redis://127.0.0.1:${server.port}`)
        assert.isDefined(server.pid)
        assert.isTrue(isAlive(server.pid!))
      }
      const redis = yield* Redis.Redis
      const info = yield* redis.send<string>("INFO", "server")
      assert.include(info, `tcp_port:${server.port}`)
    })
  )

  it.effect("round-trips SET and GET", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      assert.strictEqual(yield* redis.send<string>("SET", "rts:key", "value-1"), "OK")
      assert.strictEqual(yield* redis.send<string | null>("GET", "rts:key"), "value-1")
      assert.isNull(yield* redis.send<string | null>("GET", "rts:missing"))
    })
  )

  it.effect("flushAll empties the database", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      yield* redis.send("SET", "rts:a", "1")
      yield* redis.send("SET", "rts:b", "2")
      assert.isAtLeast(yield* redis.send<number>("DBSIZE"), 2)
      yield* RedisTestServer.flushAll
      assert.strictEqual(yield* redis.send<number>("DBSIZE"), 0)
    })
  )
})

describe("RedisTestServer.layerServer", () => {
  it.live.skipIf(Boolean(process.env.REDIS_URL))(
    "kills the spawned redis-server and removes its exit handler when the scope closes",
    () =>
      Effect.gen(function* () {
        const exitListeners = process.listenerCount("exit")
        const server = yield* Effect.scoped(
          Effect.gen(function* () {
            const context = yield* Layer.build(RedisTestServer.layerServer)
            const server = Context.get(context, RedisTestServer.RedisTestServer)
            if (server.kind === "spawned") {
              assert.isDefined(server.pid)
              assert.isTrue(isAlive(server.pid!))
              assert.strictEqual(process.listenerCount("exit"), exitListeners + 1)
            }
            return server
          })
        )
        if (server.kind !== "spawned") return
        // The finalizer waited for the child's exit event, so the PID is already gone.
        assert.isFalse(isAlive(server.pid!))
        assert.throws(() => process.kill(server.pid!, 0), /ESRCH/)
        assert.strictEqual(process.listenerCount("exit"), exitListeners)
      })
  )

  it.live.skipIf(Boolean(process.env.REDIS_URL))("starts independent servers on distinct ports", () =>
    Effect.gen(function* () {
      const [a, b] = yield* Effect.all(
        [
          Layer.build(RedisTestServer.layerServer).pipe(
            Effect.map((context) => Context.get(context, RedisTestServer.RedisTestServer))
          ),
          Layer.build(RedisTestServer.layerServer).pipe(
            Effect.map((context) => Context.get(context, RedisTestServer.RedisTestServer))
          )
        ],
        { concurrency: 2 }
      )
      assert.notStrictEqual(a.port, b.port)
      if (a.kind === "spawned" && b.kind === "spawned") assert.notStrictEqual(a.pid, b.pid)
    })
  )
})
