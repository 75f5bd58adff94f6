/**
 * Random operation sequences for the model-based tests, and the runner that plays one sequence against real `Lease`
 * services (one per client, each holding its own handles) and the reference model, comparing every answer.
 *
 * Replaying a failure: fast-check prints `seed` and `path` with the counterexample. Run the same file with them:
 *
 *   FC_SEED=-1234567 FC_PATH="17:3:0" pnpm exec vitest run test/model/memory.test.ts
 *
 * `FC_RUNS` overrides the number of runs (for a longer soak: `FC_RUNS=5000`).
 */
import { Duration, Effect, Option } from "effect"
import fc from "fast-check"
import type { Lease } from "leasehold"
import { type Answer, type Expected, LeaseModel, type Range, type Window } from "./LeaseModel.ts"

/** One generated operation. Clients and keys are small indices, so that they collide often. */
export type Op =
  | {
      readonly _tag: "Acquire"
      readonly client: number
      readonly key: number
      readonly ttl: number
      readonly withOwner: boolean
    }
  | { readonly _tag: "Renew"; readonly client: number; readonly key: number; readonly ttl: number | undefined }
  | { readonly _tag: "Release"; readonly client: number; readonly key: number }
  | { readonly _tag: "CheckOwnership"; readonly client: number; readonly key: number }
  | { readonly _tag: "Inspect"; readonly key: number }
  | { readonly _tag: "Advance"; readonly millis: number }

export const clientCount = 3
export const keyCount = 2

/** TTLs of 100 to 400 ms, with round values, so that time jumps land exactly on expiries now and then. */
const ttl = fc.oneof(fc.constantFrom(100, 150, 200, 400), fc.integer({ min: 100, max: 400 }))
/** Time jumps of 0 to 250 ms, again with round values among them. */
const jump = fc.oneof(fc.constantFrom(0, 1, 50, 99, 100, 101, 150, 200, 250), fc.integer({ min: 0, max: 250 }))
const client = fc.integer({ min: 0, max: clientCount - 1 })
const key = fc.integer({ min: 0, max: keyCount - 1 })

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ _tag: fc.constant("Acquire"), client, key, ttl, withOwner: fc.boolean() })
  },
  {
    weight: 3,
    arbitrary: fc.record({ _tag: fc.constant("Renew"), client, key, ttl: fc.option(ttl, { nil: undefined }) })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Release"), client, key }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("CheckOwnership"), client, key }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Inspect"), key }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Advance"), millis: jump }) }
)

/** Sequences of 1 to `maxLength` operations, of every length in between (not only short ones). */
export const ops = (maxLength: number): fc.Arbitrary<ReadonlyArray<Op>> =>
  fc.array(op, { minLength: 1, maxLength, size: "max" })

/** fast-check parameters: `numRuns` unless `FC_RUNS` says otherwise, and `FC_SEED` / `FC_PATH` to replay. */
export const parameters = (numRuns: number): fc.Parameters<unknown> => {
  const { FC_SEED, FC_PATH, FC_RUNS } = process.env
  return {
    numRuns: FC_RUNS === undefined ? numRuns : Number(FC_RUNS),
    includeErrorInReport: true,
    ...(FC_SEED === undefined ? {} : { seed: Number(FC_SEED) }),
    ...(FC_PATH === undefined ? {} : { path: FC_PATH })
  }
}

/** Whether the run replays one recorded case (then coverage over many runs is not expected). */
export const replaying = process.env.FC_PATH !== undefined

/** What a run needs: the clients, the store's notion of now, and a way to let time pass. */
export interface Harness {
  readonly clients: ReadonlyArray<Lease.Lease["Service"]>
  readonly keyName: (key: number) => string
  /** The current time, on the clock the store expires leases by. */
  readonly now: Effect.Effect<number>
  readonly advance: (millis: number) => Effect.Effect<void>
  /** See `LeaseModel.margin`. */
  readonly margin: number
  /** Slack on remaining times and acquisition times (whole-millisecond truncation on Redis; 0 on the TestClock). */
  readonly tolerance: number
}

/** Counts over every run of a property. */
export interface Stats {
  /** Operations that reached the store. */
  operations: number
  /** Operations whose window came within the margin of an expiry: the model split in two worlds. */
  ambiguous: number
  /** Of those, the ones whose answer told the two worlds apart (the model was resynchronised from the store). */
  resolved: number
  /** Answers seen, by kind ("acquire:Held", "renew:false", …). */
  readonly outcomes: Record<string, number>
}

export const makeStats = (): Stats => ({ operations: 0, ambiguous: 0, resolved: 0, outcomes: {} })

const count = (stats: Stats, outcome: string) => {
  stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1
}

/** What the store answered, in the model's terms. */
type Observed = Answer<number>

const within = (r: Range, value: number, tolerance: number) => value >= r.min - tolerance && value <= r.max + tolerance

const agrees = (expected: Expected, observed: Observed, tolerance: number): boolean => {
  switch (expected.op) {
    case "acquire": {
      if (observed.op !== "acquire" || observed.tag !== expected.tag) return false
      if (expected.tag === "Acquired" && observed.tag === "Acquired")
        return observed.fence === expected.fence && within(expected.acquiredAt, observed.acquiredAt, tolerance)
      return (
        expected.tag === "Held" &&
        observed.tag === "Held" &&
        observed.owner === expected.owner &&
        within(expected.remaining, observed.remaining, tolerance)
      )
    }
    case "renew":
      return observed.op === "renew" && observed.renewed === expected.renewed
    case "release":
      return observed.op === "release" && observed.released === expected.released
    case "checkOwnership":
      return observed.op === "checkOwnership" && observed.held === expected.held
    case "inspect": {
      if (observed.op !== "inspect") return false
      if (expected.info === undefined || observed.info === undefined) return expected.info === observed.info
      return (
        observed.info.fence === expected.info.fence &&
        observed.info.owner === expected.info.owner &&
        within(expected.info.remaining, observed.info.remaining, tolerance) &&
        within(expected.info.acquiredAt, observed.info.acquiredAt, tolerance)
      )
    }
  }
}

const outcomeOf = (observed: Observed): string => {
  switch (observed.op) {
    case "acquire":
      return `acquire:${observed.tag}`
    case "renew":
      return `renew:${observed.renewed}`
    case "release":
      return `release:${observed.released}`
    case "checkOwnership":
      return `checkOwnership:${observed.held}`
    case "inspect":
      return `inspect:${observed.info === undefined ? "none" : "some"}`
  }
}

const show = (value: unknown): string =>
  JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v)).replaceAll('"', "")

/** A handle a client holds, with the model's id for its token and the TTL the next renew will use. */
interface Held {
  readonly lease: Lease.Handle
  readonly id: number
  readonly ttl: number
}

/**
 * Plays `sequence` against the harness and the model. Fails with an `Error` that shows the trace, the model's state
 * and what each world expected, at the first answer that no world explains.
 */
export const run = (harness: Harness, sequence: ReadonlyArray<Op>, stats: Stats): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    let model = new LeaseModel(harness.margin)
    let nextHandle = 0
    const handles = harness.clients.map(() => new Map<number, Held>())
    /** The last handle to acquire each key, and whether it released it (for the coverage count of take-overs). */
    const lastHolder = new Map<string, { readonly id: number; released: boolean }>()
    const trace: Array<string> = []

    const mismatch = (what: string, detail: string) =>
      Effect.fail(
        new Error(
          `${what}\n${detail}\nmodel: ${model.describe()}\ntrace (time, operation, answer):\n  ${trace.join("\n  ")}`
        )
      )

    /** Runs `operation` on the store, then checks its answer against every world the model allows. */
    const check = <A>(
      key: string,
      label: string,
      operation: Effect.Effect<A, unknown>,
      observe: (answer: A) => Observed,
      expect: (model: LeaseModel, live: boolean, window: Window) => Expected
    ) =>
      Effect.gen(function* () {
        const start = yield* harness.now
        const answer = yield* operation
        const end = yield* harness.now
        const window = { start, end }
        const observed = observe(answer)
        stats.operations++
        count(stats, outcomeOf(observed))
        trace.push(`[${start}, ${end}] ${label} -> ${show(observed)}`)
        const worlds = model.worlds(key, window)
        const candidates = worlds.map((world) => ({ world, expected: expect(world.model, world.live, window) }))
        const matching = candidates.filter((c) => agrees(c.expected, observed, harness.tolerance))
        if (matching.length === 0) {
          const expected = candidates.map((c) => `${c.world.live ? "live" : "expired"}: ${show(c.expected)}`)
          return yield* mismatch(`the store and the model disagree on ${label}`, `expected ${expected.join(" or ")}`)
        }
        if (worlds.length === 2) {
          stats.ambiguous++
          // One world explains the answer: the store told us on which side of the expiry it was; follow it. Both
          // explain it: the answer did not depend on the expiry (and changed nothing); keep both possibilities open.
          if (matching.length === 1) {
            stats.resolved++
            model = matching[0]!.world.model
          }
        } else {
          model = matching[0]!.world.model
        }
        return answer
      })

    for (const op of sequence) {
      if (op._tag === "Advance") {
        yield* harness.advance(op.millis)
        trace.push(`advance ${op.millis} ms`)
        continue
      }
      if (op._tag === "Inspect") {
        const key = harness.keyName(op.key)
        yield* check(
          key,
          `inspect ${key}`,
          harness.clients[0]!.inspect(key),
          (info): Observed => ({
            op: "inspect",
            info: Option.match(info, {
              onNone: () => undefined,
              onSome: (i) => ({
                fence: i.fence,
                owner: Option.getOrUndefined(i.owner)?.id,
                remaining: Duration.toMillis(i.remaining),
                acquiredAt: i.acquiredAt.getTime()
              })
            })
          }),
          (m, live, w) => m.inspect(key, live, w)
        )
        continue
      }
      const key = harness.keyName(op.key)
      if (op._tag === "Acquire") {
        const service = harness.clients[op.client]!
        const owner = op.withOwner ? `client-${op.client}` : undefined
        const id = ++nextHandle
        const attempt = yield* check(
          key,
          `client ${op.client} acquire ${key} ttl ${op.ttl}${owner === undefined ? "" : ` as ${owner}`} (handle #${id})`,
          service.acquire(key, op.ttl, owner === undefined ? undefined : { owner: { id: owner } }),
          (attempt): Observed =>
            attempt._tag === "Acquired"
              ? {
                  op: "acquire",
                  tag: "Acquired",
                  fence: attempt.lease.fence,
                  acquiredAt: attempt.lease.acquiredAt.getTime()
                }
              : {
                  op: "acquire",
                  tag: "Held",
                  owner: Option.getOrUndefined(attempt.owner)?.id,
                  remaining: Duration.toMillis(attempt.remaining)
                },
          (m, live, w) => m.acquire(key, live, id, op.ttl, owner, w)
        )
        if (attempt._tag === "Acquired") {
          handles[op.client]!.set(op.key, { lease: attempt.lease, id, ttl: op.ttl })
          const previous = lastHolder.get(key)
          if (previous !== undefined && !previous.released) count(stats, "acquire:after-expiry")
          lastHolder.set(key, { id, released: false })
        }
        continue
      }
      // The operation goes to one of the clients that hold a handle for the key (`op.client` picks which), so that
      // few operations are wasted on clients that never acquired it; the handle may be stale.
      const holders = handles.flatMap((mine, client) => (mine.has(op.key) ? [client] : []))
      if (holders.length === 0) {
        count(stats, "skipped:no-handle")
        continue
      }
      const client = holders[op.client % holders.length]!
      const service = harness.clients[client]!
      const mine = handles[client]!
      const held = mine.get(op.key)!
      const label = (verb: string) => `client ${client} ${verb} ${key} with handle #${held.id}`
      switch (op._tag) {
        case "Renew": {
          const ttl = op.ttl ?? held.ttl
          const renewed = yield* check(
            key,
            `${label("renew")} ttl ${ttl}`,
            service.renew(held.lease, op.ttl),
            (renewed): Observed => ({ op: "renew", renewed: Option.isSome(renewed) }),
            (m, live, w) => m.renew(key, live, held.id, ttl, w)
          )
          if (Option.isSome(renewed)) {
            const lease = renewed.value
            if (lease.fence !== held.lease.fence || lease.token !== held.lease.token)
              return yield* mismatch("a renew changed the lease's fence or token", show(lease))
            if (Duration.toMillis(lease.ttl) !== ttl)
              return yield* mismatch(`a renew to ${ttl} ms gave a lease with another TTL`, show(lease))
            mine.set(op.key, { lease, id: held.id, ttl })
          }
          break
        }
        case "Release": {
          const released = yield* check(
            key,
            label("release"),
            service.release(held.lease),
            (released): Observed => ({ op: "release", released }),
            (m, live) => m.release(key, live, held.id)
          )
          const last = lastHolder.get(key)
          if (released && last?.id === held.id) last.released = true
          break
        }
        case "CheckOwnership":
          yield* check(
            key,
            label("checkOwnership"),
            service.checkOwnership(held.lease),
            (isHeld): Observed => ({ op: "checkOwnership", held: isHeld }),
            (m, live) => m.checkOwnership(key, live, held.id)
          )
          break
      }
    }
  })
