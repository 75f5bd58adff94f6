import * as net from "node:net"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { LeaseStore } from "leasehold"
import { type Active, connect, LeaseError, type Leases } from "leasehold/promise"
import { createClient } from "redis"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

let counter = 0
/** A key of its own for each test. */
const freshKey = (label: string) => `promise:${label}:${process.pid}:${++counter}`

/** The reason of a `LeaseError`, asserting that the value is one. */
const reasonOf = (error: unknown) => {
  assert.instanceOf(error, LeaseError)
  return (error as LeaseError).reason
}

/** What a Promise rejects with; fails the test if it resolves. */
const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection, got a resolution")
}

/** A port of 127.0.0.1 that nothing listens on. */
const deadPort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/** A Promise with its resolve function (lib ES2023 has no `Promise.withResolvers`). */
const deferred = <A>() => {
  let resolve: (value: A) => void = () => {}
  const promise = new Promise<A>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** Resolves when `signal` is aborted. */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener("abort", () => resolve(), { once: true })
  })

/** A private redis-server for the file, which tests may pause. */
const redisServer = () => {
  const scope = Scope.makeUnsafe()
  let faults: RedisFaults.RedisFaults["Service"] | undefined
  beforeAll(async () => {
    const context = await Effect.runPromise(Layer.buildWithScope(RedisFaults.layer, scope))
    faults = Context.get(context, RedisFaults.RedisFaults)
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const server = () => {
    if (faults === undefined) throw new Error("the Redis server is not started")
    return faults
  }
  return {
    get url() {
      return server().url
    },
    get host() {
      return server().host
    },
    get port() {
      return server().port
    },
    /** Pauses the server (SIGSTOP) until the returned function is called (or the file ends). */
    pause: async () => {
      const pauseScope = Scope.makeUnsafe()
      await Effect.runPromise(Scope.provide(server().pause, pauseScope))
      return () => Effect.runPromise(Scope.close(pauseScope, Exit.void))
    }
  }
}

/** The tests that hold for every store, on the `Leases` that `open` connects. */
const storeSuite = (open: () => Promise<Leases>) => {
  let leases: Leases
  beforeAll(async () => {
    leases = await open()
  })
  afterAll(() => leases.close())

  it("withLease resolves with the callback's value, with a fence that rises with every hold", async () => {
    const key = freshKey("fence")
    const seen: Array<Active> = []
    const first = await leases.withLease(key, 1_000, async (lease) => {
      seen.push(lease)
      assert.isFalse(lease.signal.aborted)
      await lease.ensureValid()
      return "first"
    })
    // The operations are closures: they work detached from the object.
    const { withLease } = leases
    const second = await withLease(key, "1 second", (lease) => {
      seen.push(lease)
      return 2
    })
    assert.strictEqual(first, "first")
    assert.strictEqual(second, 2)
    assert.strictEqual(seen[0]!.key, key)
    assert.strictEqual(typeof seen[0]!.fence, "bigint")
    assert.isAbove(Number(seen[1]!.fence), Number(seen[0]!.fence))
    assert.isUndefined(await leases.inspect(key), "released after each callback")
  })

  it("the lease is renewed while the callback runs: still held after three times its TTL", async () => {
    const key = freshKey("renewed")
    // A TTL with room for a late renew on a loaded machine (a 200 ms one was lost at a load average of 14).
    const remaining = await leases.withLease(key, 500, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      const info = await leases.inspect(key)
      return info === undefined ? 0 : Duration.toMillis(info.remaining)
    })
    assert.isAbove(remaining, 0)
    assert.isUndefined(await leases.inspect(key))
  })

  it("wait: 0 on a held key rejects with a LeaseError whose reason is AcquireTimeout; the callback never runs", async () => {
    const key = freshKey("busy")
    const held = await leases.acquire(key, 5_000, { owner: { id: "holder-1" } })
    assert.strictEqual(held._tag, "Acquired")
    let ran = false
    const error = await rejectionOf(
      leases.withLease(
        key,
        1_000,
        () => {
          ran = true
        },
        { wait: 0 }
      )
    )
    const reason = reasonOf(error)
    assert.strictEqual(reason._tag, "AcquireTimeout")
    if (reason._tag === "AcquireTimeout") assert.strictEqual(reason.holder?.id, "holder-1")
    assert.isFalse(ran)
    if (held._tag === "Acquired") assert.isTrue(await leases.release(held.lease))
  })

  it("the callback's own rejection passes through as it was thrown, and the lease is released", async () => {
    const key = freshKey("throws")
    const boom = new Error("boom")
    assert.strictEqual(
      await rejectionOf(
        leases.withLease(key, 1_000, async () => {
          throw boom
        })
      ),
      boom
    )
    const notAnError = { code: 42 }
    assert.strictEqual(
      await rejectionOf(
        leases.withLease(key, 1_000, () => {
          throw notAnError
        })
      ),
      notAnError
    )
    assert.isUndefined(await leases.inspect(key))
  })

  it("bad input rejects with a LeaseError that says what is wrong", async () => {
    assert.strictEqual(reasonOf(await rejectionOf(leases.withLease("", 1_000, () => 1)))._tag, "InvalidKey")
    assert.strictEqual(reasonOf(await rejectionOf(leases.acquire("k", -5)))._tag, "InvalidTtl")
  })

  it("acquire, renew, release, checkOwnership and inspect map one-to-one to the Effect API", async () => {
    const key = freshKey("ops")
    const attempt = await leases.acquire(key, 2_000, { owner: { id: "worker-1" } })
    if (attempt._tag !== "Acquired") throw new Error(`expected Acquired, got ${attempt._tag}`)
    const lease = attempt.lease
    assert.strictEqual(lease.key, key)

    const other = await leases.acquire(key, 2_000)
    assert.strictEqual(other._tag, "Held")
    if (other._tag === "Held") {
      assert.strictEqual(other.key, key)
      assert.strictEqual(Option.getOrUndefined(other.owner)?.id, "worker-1")
      assert.isAbove(Duration.toMillis(other.remaining), 0)
    }

    const info = await leases.inspect(key)
    assert.isDefined(info)
    assert.strictEqual(info?.fence, lease.fence)
    assert.strictEqual(Option.getOrUndefined(info!.owner)?.id, "worker-1")

    assert.isTrue(await leases.checkOwnership(lease))
    const renewed = await leases.renew(lease, "10 seconds")
    assert.isDefined(renewed)
    assert.strictEqual(renewed?.fence, lease.fence)
    assert.strictEqual(Duration.toMillis(renewed!.ttl), 10_000)
    assert.isAbove(Duration.toMillis((await leases.inspect(key))!.remaining), 2_000)

    assert.isTrue(await leases.release(lease))
    assert.isFalse(await leases.release(lease), "idempotent")
    assert.isFalse(await leases.checkOwnership(lease))
    assert.isUndefined(await leases.renew(lease))
    assert.isUndefined(await leases.inspect(key))
  })

  it("a defect rejects with a plain Error that says so, with the defect as its cause", async () => {
    const error = await rejectionOf(leases.release(null as never))
    assert.notInstanceOf(error, LeaseError)
    assert.instanceOf(error, Error)
    assert.match((error as Error).message, /^leasehold: release failed with an unexpected defect: /)
    assert.instanceOf((error as Error).cause, TypeError)
  })
}

describe("leasehold/promise on the memory store", () => {
  storeSuite(() => connect({ memory: true, logLevel: "None" }))

  it("close resolves, twice; every operation after it rejects with an Error that says the client is closed", async () => {
    const leases = await connect({ memory: true })
    const attempt = await leases.acquire(freshKey("closed"), 1_000)
    assert.strictEqual(attempt._tag, "Acquired")
    await leases.close()
    await leases[Symbol.asyncDispose]()
    const message = async (promise: Promise<unknown>) => ((await rejectionOf(promise)) as Error).message
    assert.match(await message(leases.withLease("k", 1_000, () => 1)), /cannot withLease: this client is closed/)
    assert.match(await message(leases.inspect("k")), /cannot inspect: this client is closed/)
    if (attempt._tag === "Acquired") {
      assert.match(await message(leases.release(attempt.lease)), /cannot release: this client is closed/)
    }
  })

  it("two memory stores do not share leases", async () => {
    const a = await connect({ memory: true })
    const b = await connect({ memory: true })
    try {
      const key = freshKey("separate")
      assert.strictEqual((await a.acquire(key, 1_000))._tag, "Acquired")
      assert.strictEqual((await b.acquire(key, 1_000))._tag, "Acquired")
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})

describe.skipIf(!RedisTestServer.hasServerBinary())("leasehold/promise on Redis", () => {
  const redis = redisServer()

  describe("the store suite", () => storeSuite(() => connect({ url: redis.url, logLevel: "None" })))

  it("a lost lease: the signal is aborted with LeaseLost before Redis can expire it, and withLease rejects with it at once", async () => {
    const ttl = 2_000
    const scope = Scope.makeUnsafe()
    const proxy = await Effect.runPromise(Scope.provide(TcpProxy.make({ host: redis.host, port: redis.port }), scope))
    // A long command timeout: a release waiting for it would hold the rejection back by 3 s.
    const leases = await connect({ url: proxy.url, commandTimeout: "3 seconds", logLevel: "None" })
    const admin = createClient({ url: redis.url })
    await admin.connect()
    const key = freshKey("lost")
    const redisKey = LeaseStore.redisKeys("lease:", key).lease
    try {
      const started = deferred<Active>()
      const stopped = deferred<void>()
      let abortedAt = 0
      const hold = leases.withLease(key, ttl, async (lease) => {
        lease.signal.addEventListener("abort", () => {
          abortedAt = performance.now()
        })
        started.resolve(lease)
        await aborted(lease.signal)
        stopped.resolve()
        return "ignored"
      })
      const holdOutcome = rejectionOf(hold)
      const lease = await started.promise
      // A partition between the holder and Redis: from here on no renew of the holder reaches Redis.
      await Effect.runPromise(proxy.blackhole)
      // So Redis expires the lease no earlier than this (PTTL counts from when Redis ran it, after `sentAt`).
      const sentAt = performance.now()
      const pttl = await admin.sendCommand<number>(["PTTL", redisKey])
      assert.isAbove(pttl, 0)
      const expiresNoEarlierThan = sentAt + pttl

      const error = await holdOutcome
      const rejectedAt = performance.now()
      const reason = reasonOf(error)
      assert.strictEqual(reason._tag, "LeaseLost")
      assert.isTrue(lease.signal.aborted)
      assert.strictEqual(lease.signal.reason, error, "the signal's reason is the rejection")
      assert.isAbove(abortedAt, 0)
      assert.isBelow(
        abortedAt,
        expiresNoEarlierThan,
        `aborted ${expiresNoEarlierThan - abortedAt} ms before Redis could expire the lease`
      )
      assert.isAbove(await admin.sendCommand<number>(["PTTL", redisKey]), 0, "still held in Redis after the abort")
      assert.isBelow(rejectedAt - abortedAt, 500, "rejected at once, without waiting for the release")
      await stopped.promise
      assert.strictEqual(await rejectionOf(lease.ensureValid()), error)
    } finally {
      admin.destroy()
      await leases.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("close settles within the command timeout + 1 s with Redis paused; it stops running holds; later calls reject", async () => {
    const commandTimeout = 300
    const leases = await connect({ url: redis.url, commandTimeout, logLevel: "None" })
    const key = freshKey("close")
    let resume: (() => Promise<void>) | undefined
    try {
      const started = deferred<Active>()
      const hold = leases.withLease(key, 10_000, async (lease) => {
        started.resolve(lease)
        await aborted(lease.signal)
      })
      const holdOutcome = rejectionOf(hold)
      const lease = await started.promise
      resume = await redis.pause()
      const closing = leases.close()
      assert.strictEqual(leases.close(), closing, "a second close is the same close")
      const began = performance.now()
      await closing
      const took = performance.now() - began
      assert.isBelow(took, commandTimeout + 1_000 + 500, `close took ${took} ms`)

      const stopped = await holdOutcome
      assert.notInstanceOf(stopped, LeaseError)
      assert.match((stopped as Error).message, /interrupted: the client was closed/)
      assert.isTrue(lease.signal.aborted)
      assert.match((lease.signal.reason as Error).message, /closed/)

      const after = await rejectionOf(leases.acquire(freshKey("after"), 1_000))
      assert.match((after as Error).message, /cannot acquire: this client is closed/)
      await leases.close()
    } finally {
      await resume?.()
    }
  })

  it("connect to a port where nothing listens rejects with StoreUnavailable naming host:port, never the password", async () => {
    const port = await deadPort()
    const began = performance.now()
    const error = await rejectionOf(connect({ url: `redis://leaseuser:s3cret-pw@127.0.0.1:${port}`, logLevel: "None" }))
    assert.isBelow(performance.now() - began, 5_000)
    const reason = reasonOf(error)
    assert.strictEqual(reason._tag, "StoreUnavailable")
    const message = (error as Error).message
    assert.include(message, `127.0.0.1:${port}`)
    assert.include(message, "ECONNREFUSED")
    assert.notInclude(message, "s3cret-pw")
    assert.notInclude(message, "leaseuser")
    assert.notInclude(message, "\n")
  })

  it("connect to a Redis that accepts the connection but answers nothing rejects with StoreUnavailable after connectTimeout", async () => {
    const resume = await redis.pause()
    try {
      const began = performance.now()
      const error = await rejectionOf(connect({ url: redis.url, connectTimeout: 300, logLevel: "None" }))
      const took = performance.now() - began
      assert.isAtLeast(took, 290)
      assert.isBelow(took, 1_500, `connect took ${took} ms`)
      assert.strictEqual(reasonOf(error)._tag, "StoreUnavailable")
      assert.include((error as Error).message, new URL(redis.url).host)
      assert.include((error as Error).message, "answered nothing within 300 ms")
    } finally {
      await resume()
    }
  })

  it("credentials: a wrong password rejects without showing it; a Redacted password connects", async () => {
    const admin = createClient({ url: redis.url })
    await admin.connect()
    await admin.sendCommand(["CONFIG", "SET", "requirepass", "right-pw-123"])
    try {
      const wrong = await rejectionOf(
        connect({ url: redis.url.replace("redis://", "redis://:wrong-pw-456@"), logLevel: "None" })
      )
      assert.strictEqual(reasonOf(wrong)._tag, "StoreUnavailable")
      assert.include((wrong as Error).message, "WRONGPASS")
      assert.notInclude((wrong as Error).message, "wrong-pw-456")
      assert.notInclude(JSON.stringify(wrong), "wrong-pw-456")

      const leases = await connect({ url: redis.url, password: Redacted.make("right-pw-123"), logLevel: "None" })
      try {
        assert.strictEqual(await leases.withLease(freshKey("auth"), 1_000, (lease) => lease.fence > 0n), true)
      } finally {
        await leases.close()
      }
    } finally {
      await admin.sendCommand(["CONFIG", "SET", "requirepass", ""])
      admin.destroy()
    }
  })

  it("connect with a URL that is not redis:// rejects with InvalidOption, without the URL", async () => {
    const error = await rejectionOf(connect({ url: "http://user:s3cret-pw@127.0.0.1:6379" }))
    const reason = reasonOf(error)
    assert.strictEqual(reason._tag, "InvalidOption")
    assert.notInclude((error as Error).message, "s3cret-pw")
  })
})
