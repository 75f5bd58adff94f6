import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Schedule, Scope } from "effect"
import type * as Redis from "effect/persistence/Redis"
import { processState } from "../src/ChildProcesses.ts"
import * as RedisFaults from "../src/RedisFaults.ts"
import { hasServerBinary } from "../src/RedisTestServer.ts"
import { connect } from "./support.ts"

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The scheduler state of a process from /proc (`T` when stopped), or undefined where /proc is missing. */
/** PING until it answers: a client reconnecting to a restarted server; bounded. */
const pingUntilAnswered = (redis: Redis.Redis["Service"]) =>
  redis
    .send<string>("PING")
    .pipe(Effect.timeout("500 millis"), Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }))

const withFaults = <A, E>(f: (faults: RedisFaults.RedisFaults["Service"]) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.scoped(Effect.flatMap(RedisFaults.make, f))

describe.skipIf(!hasServerBinary())("RedisFaults (a spawned redis-server)", () => {
  it.live("pause: PING gets no answer while paused; on resume the pending PING and new ones answer", () =>
    withFaults((faults) =>
      Effect.gen(function* () {
        const redis = yield* connect(faults.url)
        assert.strictEqual(yield* redis.send<string>("PING"), "PONG")
        const pauseScope = yield* Scope.make()
        yield* faults.pause.pipe(Scope.provide(pauseScope))
        const pid = (yield* faults.pid)!
        const state = processState(pid)
        if (state !== undefined) assert.strictEqual(state, "T", "the server process is stopped")
        const pending = yield* Effect.forkChild(redis.send<string>("PING"))
        const early = yield* Fiber.join(pending).pipe(Effect.timeoutOption("400 millis"))
        assert.isTrue(Option.isNone(early), "no answer from a paused server within 400 ms")
        yield* Scope.close(pauseScope, Exit.void)
        assert.strictEqual(yield* Fiber.join(pending).pipe(Effect.timeout("2 seconds")), "PONG")
        assert.strictEqual(yield* redis.send<string>("PING").pipe(Effect.timeout("2 seconds")), "PONG")
      })
    )
  )

  it.live("a pause is undone when its scope closes on a failure, and resume undoes it early", () =>
    withFaults((faults) =>
      Effect.gen(function* () {
        const redis = yield* connect(faults.url)
        const failed = yield* Effect.exit(Effect.scoped(Effect.andThen(faults.pause, Effect.fail("the test failed"))))
        assert.isTrue(Exit.isFailure(failed))
        assert.strictEqual(yield* redis.send<string>("PING").pipe(Effect.timeout("2 seconds")), "PONG")

        const resumedEarly = yield* Effect.scoped(
          Effect.gen(function* () {
            yield* faults.pause
            yield* faults.pause // idempotent: one SIGCONT undoes it
            yield* faults.resume
            return yield* redis.send<string>("PING").pipe(Effect.timeout("2 seconds"))
          })
        )
        assert.strictEqual(resumedEarly, "PONG")
      })
    )
  )

  it.live("closing the faults scope resumes a paused server, then stops it: nothing is left running", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const faults = yield* RedisFaults.make.pipe(Scope.provide(scope))
      const pid = (yield* faults.pid)!
      yield* faults.pause.pipe(Scope.provide(scope))
      assert.isTrue(isAlive(pid))
      yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("5 seconds"))
      assert.isFalse(isAlive(pid), "the server process is gone")
    })
  )

  it.live("kill then start: every key is gone, the same port answers, clients reconnect by themselves", () =>
    withFaults((faults) =>
      Effect.gen(function* () {
        const redis = yield* connect(faults.url)
        yield* redis.send("SET", "faults:key", "before")
        const firstPid = (yield* faults.pid)!
        yield* faults.kill
        assert.isUndefined(yield* faults.pid)
        assert.isFalse(isAlive(firstPid), "the killed process has exited")
        const down = yield* Effect.exit(redis.send<string>("PING").pipe(Effect.timeout("2 seconds")))
        assert.isTrue(Exit.isFailure(down), "a killed server answers nothing")
        yield* faults.kill // idempotent

        yield* faults.start
        const secondPid = (yield* faults.pid)!
        assert.notStrictEqual(secondPid, firstPid)
        assert.strictEqual(new URL(faults.url).port, String(faults.port))
        assert.strictEqual(yield* pingUntilAnswered(redis), "PONG")
        assert.isNull(yield* redis.send<string | null>("GET", "faults:key"), "no persistence: the key vanished")
        const info = yield* redis.send<string>("INFO", "server")
        assert.include(info, `process_id:${secondPid}`)
        assert.include(info, `tcp_port:${faults.port}`)
      })
    )
  )

  it.live("append-only: every acknowledged write survives a kill and start, with its expiry", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const faults = yield* RedisFaults.makeWith({ appendOnly: true })
        const redis = yield* connect(faults.url)
        yield* redis.send("SET", "faults:kept", "before", "PX", "60000")
        yield* faults.kill
        yield* faults.start
        assert.strictEqual(yield* pingUntilAnswered(redis), "PONG")
        assert.strictEqual(yield* redis.send<string | null>("GET", "faults:kept"), "before")
        const pttl = yield* redis.send<number>("PTTL", "faults:kept")
        assert.isTrue(pttl > 50_000 && pttl <= 60_000, `the expiry is kept: ${pttl} ms`)
        assert.include(yield* redis.send<string>("INFO", "persistence"), "aof_enabled:1")
      })
    )
  )

  it.live("restart: a new, empty process on the same port; a paused server is killed too", () =>
    withFaults((faults) =>
      Effect.gen(function* () {
        const redis = yield* connect(faults.url)
        yield* redis.send("SET", "faults:key", "before")
        const firstPid = (yield* faults.pid)!
        yield* faults.pause
        yield* faults.restart
        assert.isFalse(isAlive(firstPid))
        assert.strictEqual(yield* pingUntilAnswered(redis), "PONG")
        assert.strictEqual(yield* redis.send<number>("DBSIZE"), 0)
        const fresh = yield* connect(faults.url)
        assert.strictEqual(yield* fresh.send<string>("PING"), "PONG")
      })
    )
  )
})
