/**
 * Every bad input of docs/bad-input.md, one test per row: the `LeaseError` reason it gets, a message that says what
 * was wrong, and nothing left locked in Redis afterwards.
 */
import { assert, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Duration, Effect, Exit, Layer, Option, Result, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseError, LeaseKey, LeaseStore, LeaseToken, TokenSource } from "leasehold"
import { makeHandle } from "../src/internal/handle.ts"
import { acquired } from "./support.ts"

type Env = Lease.Lease | LeaseStore.LeaseStore | Redis.Redis | RedisTestServer.RedisTestServer | Scope.Scope

interface Row {
  /** What was passed, as the table shows it. */
  readonly input: string
  readonly operation: string
  readonly reason: LeaseError.LeaseErrorReason["_tag"]
  /** What the message must say. */
  readonly message: RegExp
  /** Produces the error (an effect that fails, flipped); any setup and clean-up of its own goes inside. */
  readonly error: Effect.Effect<unknown, unknown, Env>
  /** A secret that must not appear in the message (a token). */
  readonly secret?: string
}

let counter = 0
const freshKey = (label: string) => `bad-input:${label}:${++counter}`

const fromResult = <A>(result: Result.Result<A, LeaseError.LeaseError>) =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)

/** A Lease service over the Redis store in context, with a token source of its own. */
const leaseWithTokens = (tokens: TokenSource.TokenSource) =>
  Effect.gen(function* () {
    const store = yield* LeaseStore.LeaseStore
    return yield* Lease.make.pipe(
      Effect.provideService(LeaseStore.LeaseStore, store),
      Effect.provideService(TokenSource.TokenSource, tokens)
    )
  })

/** A Lease service over a Redis store of its own (another store id) on the same Redis. */
const anotherLease = Effect.flatMap(LeaseStore.makeRedis(), (store) =>
  Lease.make.pipe(Effect.provideService(LeaseStore.LeaseStore, store))
)

/** A Lease service whose Redis client has been closed. */
const closedLease = Effect.gen(function* () {
  const { url } = yield* RedisTestServer.RedisTestServer
  const clientScope = yield* Scope.make()
  const client = yield* Layer.buildWithScope(
    RedisTestServer.layerClient({ url, disableOfflineQueue: true }),
    clientScope
  )
  const store = yield* LeaseStore.makeRedis().pipe(Effect.provide(client))
  const lease = yield* Lease.make.pipe(Effect.provideService(LeaseStore.LeaseStore, store))
  yield* Scope.close(clientScope, Exit.void)
  return { lease, store }
})

/** A Redis whose every script reply has a shape no store operation expects. */
const garbageReply = ["?"]
const garbageLease = Effect.gen(function* () {
  const redis = yield* Redis.make({
    send: <A>(command: string) =>
      Effect.succeed((command === "SCRIPT" ? "0000000000000000000000000000000000000000" : garbageReply) as A),
    subscribe: () => Effect.never,
    connect: Effect.never
  })
  const store = yield* LeaseStore.makeRedis().pipe(Effect.provideService(Redis.Redis, redis))
  const lease = yield* Lease.make.pipe(Effect.provideService(LeaseStore.LeaseStore, store))
  // A Redis that answers garbage grants no lease: the handle is made as the service would have made it.
  const handle = makeHandle({
    key: LeaseKey.make("garbage"),
    token: LeaseToken.make("garbage-token-0000001"),
    ttl: Duration.seconds(10),
    owner: Option.none(),
    fence: 1n,
    acquiredAt: new Date(),
    validUntil: 0,
    storeId: store.id
  })
  return { lease, handle }
})

/** Runs `use` with a lease held through the file's Lease service, released (and checked still held) at the end. */
const withHeld = <A, E, R>(label: string, use: (lease: Lease.Handle) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.flatMap(Lease.acquire(freshKey(label), "10 seconds"), (attempt) => Effect.succeed(acquired(attempt))),
    use,
    (lease) =>
      Lease.release(lease).pipe(
        Effect.flatMap((wasHeld) =>
          wasHeld ? Effect.void : Effect.die(new Error("the bad input released or lost the lease it was given"))
        ),
        Effect.orDie
      )
  )

/** Puts a value of the wrong type where the store keeps a lease's Redis key, for the life of `use`. */
const withWrongType = <A, E, R>(redisKey: (key: string) => string, use: (key: string) => Effect.Effect<A, E, R>) => {
  const key = freshKey("wrong-type")
  const target = redisKey(key)
  return Effect.gen(function* () {
    const redis = yield* Redis.Redis
    return yield* Effect.acquireUseRelease(
      redis.send("SET", target, "not what the store wrote"),
      () => use(key),
      () => Effect.orDie(redis.send("DEL", target))
    )
  })
}

const lease = (key: string, ttl: Duration.Input, options?: Lease.AcquireOptions) =>
  Effect.flip(Lease.acquire(key, ttl, options))
const auto = (key: string, ttl: Duration.Input, options?: Lease.HoldOptions) =>
  Effect.flip(Lease.withLease(key, ttl, Effect.void, options))

const token = (input: string, label: string): ReadonlyArray<Row> => {
  const problem =
    input.length < 16
      ? new RegExp(`it is ${input.length} characters long, fewer than 16`)
      : input.length > 256
        ? new RegExp(`it is ${input.length} characters long, more than 256`)
        : /it contains a character outside \[A-Za-z0-9._~:-\]/
  return [
    {
      input: `token ${label}`,
      operation: "LeaseToken.decode",
      reason: "InvalidToken",
      message: problem,
      secret: input,
      error: Effect.flip(fromResult(LeaseToken.decode(input)))
    },
    {
      input: `token ${label}`,
      operation: "LeaseToken.make (throws)",
      reason: "InvalidToken",
      message: problem,
      secret: input,
      error: Effect.flip(Effect.try({ try: () => LeaseToken.make(input), catch: (thrown) => thrown }))
    }
  ]
}

const owner = (input: string, value: unknown, message: RegExp): Row => ({
  input: `owner ${input}`,
  operation: "Lease.acquire",
  reason: "InvalidOwner",
  message,
  error: lease(freshKey("owner"), "10 seconds", { owner: value as never })
})

const rows: ReadonlyArray<Row> = [
  // keys
  ...(
    [
      ["empty", "", /Invalid lease key "": it is empty/],
      ["of 513 characters", "k".repeat(513), /it is 513 characters long, more than 512/],
      ["with \\n", "a\nb", /Invalid lease key "a\\nb": it contains a control character/],
      ["with \\t", "a\tb", /"a\\tb": it contains a control character/],
      ["with \\u0000", "a\u0000b", /"a\\u0000b": it contains a control character/],
      ["with \\u007f", "a\u007fb", /"a\\u007fb": it contains a control character/],
      [
        "\\uD800 (a lone surrogate)",
        "\uD800",
        /"\\ud800": it is not well-formed Unicode \(a lone surrogate U\+D800 at index 0/
      ],
      [
        "a\\uDC00 (a lone surrogate)",
        "a\uDC00",
        /"a\\udc00": it is not well-formed Unicode \(a lone surrogate U\+DC00 at index 1/
      ]
    ] as const
  ).map(
    ([label, key, message]): Row => ({
      input: `key ${label}`,
      operation: "Lease.acquire",
      reason: "InvalidKey",
      message,
      error: lease(key, "10 seconds")
    })
  ),
  {
    input: "key empty",
    operation: "Lease.inspect",
    reason: "InvalidKey",
    message: /it is empty/,
    error: Effect.flip(Lease.inspect(""))
  },
  {
    input: "key with \\n",
    operation: "Lease.withLease",
    reason: "InvalidKey",
    message: /control character/,
    error: auto("a\nb", "10 seconds")
  },
  {
    input: "key \\uDBFF (a lone surrogate)",
    operation: "Lease.withLease",
    reason: "InvalidKey",
    message: /not well-formed Unicode/,
    error: auto("\uDBFF", "10 seconds")
  },
  // store options
  {
    input: 'prefix "app:{leases}:"',
    operation: "LeaseStore.makeRedis",
    reason: "InvalidOption",
    message: /Invalid lease option "prefix": "app:\{leases\}:" contains a brace/,
    error: Effect.flip(LeaseStore.makeRedis({ prefix: "app:{leases}:" }))
  },
  // TTLs
  ...(
    [
      ["0", 0, /TTL 0: it is zero; a lease needs a positive TTL/],
      ["-1", -1, /TTL -1: it is negative/],
      ["NaN", Number.NaN, /TTL NaN: it is NaN/],
      ["Infinity", Number.POSITIVE_INFINITY, /TTL Infinity: it is infinite/],
      ["-Infinity", Number.NEGATIVE_INFINITY, /TTL -Infinity: it is infinite/],
      ["1.5 ms", 1.5, /it is 1.5 ms, not a whole number of milliseconds/],
      ['"soon"', "soon", /TTL "soon": it is not a duration/],
      ['"10 parsecs"', "10 parsecs", /TTL "10 parsecs": it is not a duration/]
    ] as const
  ).map(
    ([label, ttl, message]): Row => ({
      input: `ttl ${label}`,
      operation: "Lease.acquire",
      reason: "InvalidTtl",
      message,
      error: lease(freshKey("ttl"), ttl as Duration.Input)
    })
  ),
  {
    input: "ttl 50 ms, auto-renewed",
    operation: "Lease.withLease",
    reason: "InvalidTtl",
    message: /TTL 50: it is shorter than 100 ms, the minimum for an auto-renewed lease/,
    error: auto(freshKey("ttl-auto"), 50)
  },
  {
    input: "ttl 50 ms, auto-renewed",
    operation: "Lease.hold",
    reason: "InvalidTtl",
    message: /shorter than 100 ms, the minimum for an auto-renewed lease/,
    error: Effect.flip(Effect.scoped(Lease.hold(freshKey("ttl-scoped"), 50)))
  },
  {
    input: "ttl 0 for a renew",
    operation: "Lease.renew",
    reason: "InvalidTtl",
    message: /TTL 0: it is zero/,
    error: withHeld("renew-ttl", (held) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Lease.renew(held, 0))
        const info = Option.getOrThrow(yield* Lease.inspect(held.key))
        assert.isTrue(Duration.toMillis(info.remaining) > 9_000, "the lease keeps its TTL")
        return error
      })
    )
  },
  {
    input: "ttl 1e21 ms (beyond Redis's range)",
    operation: "Lease.acquire (Redis)",
    reason: "InvalidTtl",
    message: /it is longer than 2147483647 ms/,
    error: lease(freshKey("ttl-huge"), 1e21)
  },
  {
    input: "ttl 2147483648 ms (one past the longest lease)",
    operation: "Lease.acquire (Redis)",
    reason: "InvalidTtl",
    message: /it is longer than 2147483647 ms \(about 24.8 days\)/,
    error: lease(freshKey("ttl-huge"), 2_147_483_648)
  },
  // tokens
  ...token("short", "of 5 characters"),
  ...token("t".repeat(257), "of 257 characters"),
  ...token("has spaces/and/slashes!", "with characters outside the alphabet"),
  // options
  {
    input: "renewEvery 0",
    operation: "Lease.withLease",
    reason: "InvalidOption",
    message: /option "renewEvery": it is zero/,
    error: auto(freshKey("renew-every"), 300, { renewEvery: 0 })
  },
  {
    input: "renewEvery 101 ms with a TTL of 300 ms (> TTL/3)",
    operation: "Lease.withLease",
    reason: "InvalidOption",
    message: /"renewEvery": 101 ms is more than a third of the TTL \(100 ms\), too late to renew safely/,
    error: auto(freshKey("renew-every"), 300, { renewEvery: 101 })
  },
  {
    input: "renewEvery NaN",
    operation: "Lease.withLease",
    reason: "InvalidOption",
    message: /"renewEvery": it is NaN/,
    error: auto(freshKey("renew-every"), 300, { renewEvery: Number.NaN })
  },
  {
    input: "wait -1",
    operation: "Lease.withLease",
    reason: "InvalidOption",
    message: /option "wait": it is negative/,
    error: auto(freshKey("wait"), 300, { wait: -1 })
  },
  {
    input: "wait NaN",
    operation: "Lease.withLease",
    reason: "InvalidOption",
    message: /option "wait": it is NaN/,
    error: auto(freshKey("wait"), 300, { wait: Number.NaN })
  },
  // owners
  owner("with an empty id", { id: "" }, /Invalid lease owner: .*length of at least 1[\s\S]*\["id"\]/),
  owner("with an id of 257 characters", { id: "i".repeat(257) }, /length of at most 256[\s\S]*\["id"\]/),
  owner("with a number as id", { id: 42 }, /Expected string[\s\S]*\["id"\]/),
  owner("with a string as pid", { id: "w", pid: "12" }, /Expected number[\s\S]*\["pid"\]/),
  owner("with a number as label", { id: "w", labels: { a: 1 } }, /Expected string[\s\S]*\["labels"\]\["a"\]/),
  owner("that is a string", "worker-1", /Expected object/),
  owner(
    "over 4 KiB of JSON",
    { id: "w", labels: { notes: "n".repeat(5_000) } },
    /it encodes to 50\d\d characters, more than 4096/
  ),
  // token sources
  {
    input: 'TokenSource.fromEffect returning "this is not a token!"',
    operation: "Lease.acquire",
    reason: "InvalidToken",
    message: /character outside \[A-Za-z0-9._~:-\]/,
    secret: "this is not a token!",
    error: Effect.flatMap(leaseWithTokens(TokenSource.fromEffect(Effect.succeed("this is not a token!"))), (service) =>
      Effect.flip(service.acquire(freshKey("token-source"), "10 seconds"))
    )
  },
  {
    input: 'TokenSource.fromEffect returning "short"',
    operation: "Lease.withLease",
    reason: "InvalidToken",
    message: /it is 5 characters long, fewer than 16/,
    error: Effect.flatMap(leaseWithTokens(TokenSource.fromEffect(Effect.succeed("short"))), (service) =>
      Effect.flip(Effect.scoped(service.hold(freshKey("token-source"), "10 seconds")))
    )
  },
  {
    input: 'a hand-made TokenSource (no fromEffect) returning "short"',
    operation: "Lease.acquire",
    reason: "InvalidToken",
    message: /it is 5 characters long, fewer than 16/,
    error: Effect.flatMap(leaseWithTokens({ newToken: Effect.succeed("short" as LeaseToken.LeaseToken) }), (service) =>
      Effect.flip(service.acquire(freshKey("token-source"), "10 seconds"))
    )
  },
  {
    input: "TokenSource.fromEffect that fails",
    operation: "Lease.acquire",
    reason: "InvalidToken",
    message: /the token source failed: .*entropy pool unavailable/,
    error: Effect.flatMap(
      leaseWithTokens(TokenSource.fromEffect(Effect.fail(new Error("entropy pool unavailable")))),
      (service) => Effect.flip(service.acquire(freshKey("token-source"), "10 seconds"))
    )
  },
  // a closed client
  {
    input: "a closed Redis client",
    operation: "Lease.acquire",
    reason: "StoreUnavailable",
    message: /Lease store unavailable during acquire of .*closed.*Check that Redis is reachable/i,
    error: Effect.flatMap(closedLease, ({ lease }) => Effect.flip(lease.acquire(freshKey("closed"), "10 seconds")))
  },
  {
    input: "a closed Redis client",
    operation: "Lease.inspect",
    reason: "StoreUnavailable",
    message: /during inspect of .*closed/i,
    error: Effect.flatMap(closedLease, ({ lease }) => Effect.flip(lease.inspect(freshKey("closed"))))
  },
  // a Redis that answers garbage
  ...(
    [
      ["acquire", (l: Lease.Lease["Service"]) => l.acquire("garbage", "10 seconds")],
      ["renew", (l: Lease.Lease["Service"], h: Lease.Handle) => l.renew(h)],
      ["release", (l: Lease.Lease["Service"], h: Lease.Handle) => l.release(h)],
      ["checkOwnership", (l: Lease.Lease["Service"], h: Lease.Handle) => l.checkOwnership(h)],
      ["inspect", (l: Lease.Lease["Service"]) => l.inspect("garbage")]
    ] as const
  ).map(
    ([operation, call]): Row => ({
      input: `a Redis replying ${JSON.stringify(garbageReply)} to EVALSHA`,
      operation: `Lease.${operation}`,
      reason: "StoreUnavailable",
      message: new RegExp(`during ${operation} of "garbage": unexpected reply from Redis: \\["\\?"\\]`),
      error: Effect.flatMap(garbageLease, ({ lease, handle }) =>
        Effect.flip<unknown, LeaseError.LeaseError, never>(call(lease, handle))
      )
    })
  ),
  // wrong types in Redis
  {
    input: "a string where the lease hash belongs",
    operation: "Lease.acquire",
    reason: "StoreUnavailable",
    message: /during acquire of .*WRONGTYPE/,
    error: withWrongType(
      (key) => LeaseStore.redisKeys("lease:", key).lease,
      (key) => lease(key, "10 seconds")
    )
  },
  {
    input: "a string where the lease hash belongs",
    operation: "Lease.inspect",
    reason: "StoreUnavailable",
    message: /during inspect of .*WRONGTYPE/,
    error: withWrongType(
      (key) => LeaseStore.redisKeys("lease:", key).lease,
      (key) => Effect.flip(Lease.inspect(key))
    )
  },
  {
    input: "a fence counter that is not a number",
    operation: "Lease.acquire",
    reason: "StoreUnavailable",
    message: /during acquire of .*value is not an integer/,
    error: withWrongType(
      (key) => LeaseStore.redisKeys("lease:", key).fence,
      (key) =>
        Effect.gen(function* () {
          const error = yield* lease(key, "10 seconds")
          assert.isTrue(Option.isNone(yield* Lease.inspect(key)), "the failed acquire wrote no lease")
          return error
        })
    )
  },
  // a lease handed to another store
  ...(
    [
      ["renew", "renew", (l: Lease.Lease["Service"], h: Lease.Handle) => l.renew(h)],
      ["release", "release", (l: Lease.Lease["Service"], h: Lease.Handle) => l.release(h)],
      ["checkOwnership", "check ownership of", (l: Lease.Lease["Service"], h: Lease.Handle) => l.checkOwnership(h)]
    ] as const
  ).map(
    ([operation, verb, call]): Row => ({
      input: "a lease acquired through another store",
      operation: `Lease.${operation}`,
      reason: "ForeignLease",
      message: new RegExp(`Cannot ${verb} the lease on ".*": it was not acquired through this lease store`),
      error: withHeld("foreign", (held) =>
        Effect.gen(function* () {
          const other = yield* anotherLease
          const error = yield* Effect.flip<unknown, LeaseError.LeaseError, never>(call(other, held))
          assert.isTrue(yield* Lease.checkOwnership(held), "the other store left the lease alone")
          return error
        })
      )
    })
  )
]

/** Every Redis key that is not a fence counter (those outlive leases by design). */
const lockedKeys = Effect.gen(function* () {
  const redis = yield* Redis.Redis
  const keys = yield* redis.send<ReadonlyArray<string>>("KEYS", "*")
  return keys.filter((key) => !key.endsWith(":fence"))
})

const TestLayer = Layer.fresh(Lease.layer).pipe(
  Layer.provideMerge(LeaseStore.layerRedis()),
  Layer.provideMerge(RedisTestServer.layer)
)

layer(TestLayer, { excludeTestServices: true })("bad input", (it) => {
  for (const row of rows) {
    it.effect(`${row.operation}: ${row.input} -> ${row.reason}`, () =>
      Effect.gen(function* () {
        const error = yield* Effect.scoped(row.error)
        if (!LeaseError.isLeaseError(error)) throw new Error(`expected a LeaseError, got ${String(error)}`)
        assert.strictEqual(error.reason._tag, row.reason)
        assert.match(error.message, row.message)
        if (row.secret !== undefined) assert.notInclude(error.message, row.secret, "the token stays out of the message")
        assert.deepStrictEqual(yield* lockedKeys, [], "nothing is left locked")
      })
    )
  }
})
