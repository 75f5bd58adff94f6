import * as util from "node:util"
import { assert, describe, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Cause, Effect, Exit } from "effect"
import { Lease, LeaseError } from "leasehold"
import { freshKey, leaseClient, leaseRedisKey, reasonOf } from "./support.ts"

/** 64 MiB: a reply far larger than anything a message or a log line should carry. */
const HUGE = 64 * 1024 * 1024
/** "A few hundred characters of any reply", with the message's own words around them. */
const MESSAGE_BOUND = 1_000

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: replies that are wrong or huge", () => {
  layer(RedisTestServer.layerServer, { excludeTestServices: true })("huge replies", (it) => {
    it.effect(
      "a 64 MiB field written into a lease hash by another client: StoreUnavailable with a bounded message; the whole reply stays on the error",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const { url } = yield* RedisTestServer.RedisTestServer
            // Room for 64 MiB to cross a loopback on a busy machine: the bound is not what this test is about.
            const client = yield* leaseClient(url, { commandTimeout: "30 seconds" })
            const key = freshKey("huge-fence")
            const huge = "9x".repeat(HUGE / 2)
            yield* client.redis.send(
              "HSET",
              leaseRedisKey(key),
              "token",
              "t",
              "owner",
              "",
              "fence",
              huge,
              "acquiredAt",
              "1"
            )
            yield* client.redis.send("PEXPIRE", leaseRedisKey(key), "60000")

            const exit = yield* Effect.exit(client.run(Lease.inspect(key)))
            const reason = reasonOf(exit)
            assert.strictEqual(reason._tag, "StoreUnavailable")
            const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
            assert.isTrue(LeaseError.isLeaseError(error))
            const message = (error as LeaseError.LeaseError).message
            assert.isBelow(message.length, MESSAGE_BOUND, `message of ${message.length} characters`)
            assert.include(message, "unexpected reply from Redis", message)
            assert.include(message, `${huge.length} characters`, "it says how much was left out")
            const pretty = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
            assert.isBelow(pretty.length, 20 * MESSAGE_BOUND, `Cause.pretty of ${pretty.length} characters`)
            const inspected = util.inspect(error, { depth: 10 })
            assert.isBelow(inspected.length, 20 * MESSAGE_BOUND, `util.inspect of ${inspected.length} characters`)

            const cause = reason._tag === "StoreUnavailable" ? reason.cause : undefined
            assert.instanceOf(cause, Error)
            const reply = (cause as Error & { readonly reply: ReadonlyArray<unknown> }).reply
            assert.strictEqual(reply[2], huge, "the whole reply, for those who ask")
          })
        ),
      60_000
    )

    it.effect("a Redis error of 1 MiB: the message shows its start, the cause keeps it whole", () =>
      Effect.sync(() => {
        const huge = `ERR ${"e".repeat(1024 * 1024)}`
        const reason = new LeaseError.StoreUnavailable({ operation: "renew", key: "k", cause: new Error(huge) })
        assert.isBelow(reason.message.length, MESSAGE_BOUND, `message of ${reason.message.length} characters`)
        assert.include(reason.message, "ERR eeee")
        assert.strictEqual((reason.cause as Error).message, huge)
      })
    )
  })
})
