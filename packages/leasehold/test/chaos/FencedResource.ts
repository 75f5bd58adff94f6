/**
 * The protected resource of the chaos tests: a Redis-side log of protected steps. Each step is one Lua script that
 * records, atomically and in Redis's own order and clock:
 * - the fence verdict: `accepted`, or `stale` when a higher fence already stepped (a fenced resource refuses it:
 *   an older holder acting after a newer one began);
 * - the lease verdict, when the resource lives on the lease store's server: whether the stepping token still holds
 *   the lease there at that instant (`held`), or the lease is gone (`expired`) or another token holds it (`stolen`).
 *   A step that is not `held` is work running past the server-side lease, the silent overrun leases must prevent.
 *
 * Used by the chaos tests in this process and by the worker processes (`worker.ts`).
 */
import { Effect } from "effect"
import * as Redis from "effect/persistence/Redis"
import { LeaseStore } from "leasehold"

export type Verdict = "accepted" | "stale"
export type LeaseState = "held" | "expired" | "stolen" | "unchecked"

export interface Step {
  readonly verdict: Verdict
  readonly lease: LeaseState
  readonly fence: bigint
  readonly holder: string
  /** Redis's `TIME` when the step ran, in microseconds. */
  readonly micros: bigint
}

/** What a step checks the lease against: the lease hash on the same server, and the stepping token. */
export interface LeaseCheck {
  readonly key: string
  readonly token: string
  readonly prefix?: string | undefined
}

const stepScript = Redis.script(
  (highest: string, log: string, lease: string, fence: string, holder: string, token: string) => [
    highest,
    log,
    lease,
    fence,
    holder,
    token
  ],
  {
    numberOfKeys: 3,
    lua: `
local fence = tonumber(ARGV[1])
local highest = tonumber(redis.call("GET", KEYS[1]) or "0")
local verdict = "accepted"
if fence < highest then
  verdict = "stale"
elseif fence > highest then
  redis.call("SET", KEYS[1], ARGV[1])
end
local lease = "unchecked"
if ARGV[3] ~= "" then
  local token = redis.call("HGET", KEYS[3], "token")
  if token == ARGV[3] then lease = "held" elseif token then lease = "stolen" else lease = "expired" end
end
local now = redis.call("TIME")
local micros = now[1] .. string.format("%06d", tonumber(now[2]))
redis.call("RPUSH", KEYS[2], verdict .. " " .. lease .. " " .. ARGV[1] .. " " .. micros .. " " .. ARGV[2])
return {verdict, lease, micros}
`
  }
).withReturnType<[Verdict, LeaseState, string]>()

const parse = (entry: string): Step => {
  const [verdict, lease, fence, micros, ...holder] = entry.split(" ")
  return {
    verdict: verdict as Verdict,
    lease: lease as LeaseState,
    fence: BigInt(fence!),
    micros: BigInt(micros!),
    holder: holder.join(" ")
  }
}

/** The resource named `name` on the server behind `redis`. */
export const make = (redis: Redis.Redis["Service"], name: string) => {
  const keys = { highest: `chaos:{${name}}:highest`, log: `chaos:{${name}}:log` }
  const run = redis.eval(stepScript)
  return {
    /** One protected step by `holder` with `fence`, checked against the lease when `lease` is given. */
    step: (options: { readonly fence: bigint; readonly holder: string; readonly lease?: LeaseCheck | undefined }) =>
      Effect.map(
        run(
          keys.highest,
          keys.log,
          options.lease === undefined
            ? `chaos:{${name}}:unchecked`
            : LeaseStore.redisKeys(options.lease.prefix ?? "lease:", options.lease.key).lease,
          String(options.fence),
          options.holder,
          options.lease?.token ?? ""
        ),
        ([verdict, lease, micros]): Step => ({
          verdict,
          lease,
          fence: options.fence,
          holder: options.holder,
          micros: BigInt(micros)
        })
      ),
    /** Every step so far, in the order Redis ran them. */
    log: Effect.map(redis.send<Array<string>>("LRANGE", keys.log, "0", "-1"), (entries) => entries.map(parse))
  }
}

export type FencedResource = ReturnType<typeof make>
