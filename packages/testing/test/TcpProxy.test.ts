import * as net from "node:net"
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Schedule, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import * as RedisTestServer from "../src/RedisTestServer.ts"
import * as TcpProxy from "../src/TcpProxy.ts"
import { connect } from "./support.ts"

/** A proxy in front of the test server and a client connected through it. */
const proxied = Effect.gen(function* () {
  const server = yield* RedisTestServer.RedisTestServer
  const proxy = yield* TcpProxy.make({ host: server.host, port: server.port })
  const client = yield* connect(proxy.url)
  return { proxy, client }
})

const elapsedMillis = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(effect, (value) => ({ value, millis: performance.now() - start }))
  })

let counter = 0
const freshKey = (label: string) => `proxy-test:${label}:${++counter}`

layer(RedisTestServer.layer, { excludeTestServices: true })("TcpProxy (a real redis-server)", (it) => {
  it.effect("forwards commands and replies, on 127.0.0.1, with a redis:// url", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        assert.strictEqual(proxy.host, "127.0.0.1")
        assert.strictEqual(proxy.url, `redis://127.0.0.1:${proxy.port}`)
        assert.strictEqual(yield* client.send<string>("PING"), "PONG")
        const key = freshKey("forward")
        yield* client.send("SET", key, "through the proxy")
        const direct = yield* Redis.Redis
        assert.strictEqual(yield* direct.send<string>("GET", key), "through the proxy")
        assert.strictEqual(yield* proxy.connections, 1)
      })
    )
  )

  it.effect("latency: a round trip takes at least both delays; back to normal after heal", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        yield* proxy.setLatency({ toServer: "80 millis", toClient: "40 millis" })
        const slow = yield* elapsedMillis(client.send<string>("PING"))
        assert.strictEqual(slow.value, "PONG")
        assert.isAtLeast(slow.millis, 120, `PING took ${slow.millis} ms with 80 + 40 ms of latency`)
        assert.isBelow(slow.millis, 1_000)
        yield* proxy.setLatency({ toServer: "150 millis" })
        const oneWay = yield* elapsedMillis(client.send<string>("PING"))
        assert.isAtLeast(oneWay.millis, 150, `PING took ${oneWay.millis} ms with 150 ms towards the server`)
        yield* proxy.heal
        const healed = yield* elapsedMillis(client.send<string>("PING"))
        assert.isBelow(healed.millis, 100, `PING took ${healed.millis} ms after heal`)
      })
    )
  )

  it.effect("latency towards the client delays the reply, not the command", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        const direct = yield* Redis.Redis
        const key = freshKey("reply-latency")
        yield* proxy.setLatency({ toClient: "400 millis" })
        const replied = yield* Deferred.make<void>()
        const incr = yield* Effect.forkChild(
          client.send<number>("INCR", key).pipe(Effect.tap(() => Deferred.succeed(replied, undefined)))
        )
        const executed = yield* direct
          .send<string | null>("GET", key)
          .pipe(Effect.repeat({ until: (value) => value === "1", schedule: Schedule.spaced("10 millis"), times: 100 }))
        assert.strictEqual(executed, "1", "the command ran in Redis")
        assert.isFalse(yield* Deferred.isDone(replied), "while its reply is still delayed")
        assert.strictEqual(yield* Fiber.join(incr), 1)
      })
    )
  )

  it.effect("blackhole: nothing is delivered, the connection stays open; after heal the held bytes flow in order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        const direct = yield* Redis.Redis
        const key = freshKey("blackhole")
        assert.strictEqual(yield* client.send<string>("PING"), "PONG")
        yield* proxy.blackhole
        const incr = yield* Effect.forkChild(client.send<number>("INCR", key))
        const ping = yield* Effect.forkChild(client.send<string>("PING"))
        const early = yield* Fiber.join(ping).pipe(Effect.timeoutOption("500 millis"))
        assert.isTrue(Option.isNone(early), "no answer within 500 ms through a blackhole")
        assert.isNull(yield* direct.send<string | null>("GET", key), "the command did not reach Redis")
        assert.strictEqual(yield* proxy.connections, 1, "the connection is still open")
        yield* proxy.heal
        assert.strictEqual(yield* Fiber.join(incr).pipe(Effect.timeout("2 seconds")), 1)
        assert.strictEqual(yield* Fiber.join(ping).pipe(Effect.timeout("2 seconds")), "PONG")
        assert.strictEqual(yield* proxy.connections, 1, "the same connection carried on")
      })
    )
  )

  it.effect("dropReplies: the command reaches Redis, its reply never arrives; heal closes that broken connection", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        const direct = yield* Redis.Redis
        const key = freshKey("drop")
        yield* proxy.dropReplies
        const incr = yield* Effect.forkChild(client.send<number>("INCR", key))
        const executed = yield* direct
          .send<string | null>("GET", key)
          .pipe(Effect.repeat({ until: (value) => value === "1", schedule: Schedule.spaced("10 millis"), times: 100 }))
        assert.strictEqual(executed, "1", "the command ran in Redis")
        const reply = yield* Fiber.join(incr).pipe(Effect.timeoutOption("500 millis"))
        assert.isTrue(Option.isNone(reply), "no reply within 500 ms")
        yield* proxy.heal
        const broken = yield* Fiber.await(incr).pipe(Effect.timeout("2 seconds"))
        assert.isTrue(Exit.isFailure(broken), "the pending command fails with the closed connection")
        const pong = yield* client
          .send<string>("PING")
          .pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 60 }))
        assert.strictEqual(pong, "PONG", "the client reconnected")
      })
    )
  )

  it.effect("cut: the client sees its socket closed, and a pending command fails instead of hanging", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        const raw = net.connect({ host: proxy.host, port: proxy.port })
        raw.on("error", () => {})
        yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
        yield* Effect.callback<void>((resume) => {
          raw.once("connect", () => resume(Effect.void))
        })
        const closed = Effect.callback<void>((resume) => {
          if (raw.destroyed) return resume(Effect.void)
          raw.once("close", () => resume(Effect.void))
        })
        yield* proxy.blackhole
        const pending = yield* Effect.forkChild(client.send<string>("PING"))
        yield* proxy.cut
        yield* closed.pipe(Effect.timeout("2 seconds"))
        const failed = yield* Fiber.await(pending).pipe(Effect.timeout("2 seconds"))
        assert.isTrue(Exit.isFailure(failed), "the pending PING failed")
        yield* proxy.heal
        const pong = yield* client
          .send<string>("PING")
          .pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 60 }))
        assert.strictEqual(pong, "PONG", "the client reconnected through the proxy")
      })
    )
  )

  it.effect("refuse: new connections are closed at once, open ones stay; heal accepts again", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { proxy, client } = yield* proxied
        const closedAtOnce = Effect.callback<boolean>((resume) => {
          const raw = net.connect({ host: proxy.host, port: proxy.port })
          raw.on("error", () => {})
          raw.once("close", () => resume(Effect.succeed(true)))
          raw.once("data", () => resume(Effect.succeed(false)))
          raw.once("connect", () => raw.write("PING\r\n"))
          return Effect.sync(() => raw.destroy())
        })
        yield* proxy.refuse
        assert.isTrue(yield* closedAtOnce.pipe(Effect.timeout("2 seconds")), "a new connection is closed unanswered")
        assert.strictEqual(yield* client.send<string>("PING"), "PONG", "an open connection still works")
        yield* proxy.heal
        assert.isFalse(
          yield* closedAtOnce.pipe(Effect.timeout("2 seconds")),
          "after heal, a new connection is answered"
        )
      })
    )
  )

  it.effect("closing the scope destroys the connections and stops listening", () =>
    Effect.gen(function* () {
      const server = yield* RedisTestServer.RedisTestServer
      const scope = yield* Scope.make()
      const proxy = yield* TcpProxy.make({ host: server.host, port: server.port }).pipe(Scope.provide(scope))
      const raw = net.connect({ host: proxy.host, port: proxy.port })
      raw.on("error", () => {})
      yield* Effect.callback<void>((resume) => {
        raw.once("connect", () => resume(Effect.void))
      })
      const closed = Effect.callback<void>((resume) => {
        if (raw.destroyed) return resume(Effect.void)
        raw.once("close", () => resume(Effect.void))
      })
      yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("2 seconds"))
      yield* closed.pipe(Effect.timeout("2 seconds"))
      const refused = yield* Effect.callback<string>((resume) => {
        const probe = net.connect({ host: proxy.host, port: proxy.port })
        probe.once("connect", () => {
          probe.destroy()
          resume(Effect.succeed("connected"))
        })
        probe.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? "error")))
      }).pipe(Effect.timeout("2 seconds"))
      assert.strictEqual(refused, "ECONNREFUSED")
    })
  )
})
