/**
 * The timing trial: does the interrupt of a lost lease land before Redis expires the key, on a machine whose cores
 * are busy? Each trial holds a lease (`withLease`, auto-renewed) through a `TcpProxy` of its own, blackholes the
 * proxy at a random point of the renew cycle (Redis keeps running and expires the key; the holder cannot renew), and
 * compares the moment the interruption reaches the work with the moment Redis expires the key.
 *
 * The expiry is Redis's own: `PEXPIRETIME` (the key's absolute expiry, Unix ms) on a direct connection, read at the
 * cut and again halfway to the expiry (the later answer wins, in case a renew sent just before the cut landed after
 * the first read). The interruption is timed with `Date.now()`, the clock Redis reads on this machine. Redis's
 * `expired` keyspace notification is recorded beside it as a check (it comes later: Redis notices expired keys in
 * its background cycle). CPU-burning child processes keep the cores busy; the cut points come from a seeded PRNG.
 *
 * Trials alternate between two margins, so that both see the same load: `measured` (the library as it is: the
 * renewer gives up earlier by the event-loop delay it sees) and `constant` (the fixed reaction time alone, as before
 * the event-loop delay was measured). The constant trials run the lease under a clock that forwards to Effect's
 * default one but is not it, which is what turns the measurement off (see internal/loopDelay.ts).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Clock, Context, Deferred, Effect, Fiber, Queue, type Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseObserver, LeaseStore } from "leasehold"
import { random } from "../test/chaos/protocol.ts"
import { nowMillis } from "../test/chaos/support.ts"

/** What to run: how many trials (and how many at once), which TTL, how many CPU burners, which seed. */
export interface Options {
  /** Which margins to run: `both` alternates them trial by trial (the default), or one of them only. */
  readonly margins: Mode | "both"
  readonly trials: number
  readonly concurrency: number
  readonly ttlMillis: number
  readonly burners: number
  readonly seed: number
  readonly log?: ((line: string) => void) | undefined
}

/** The command's defaults: 200 trials, 4 at once, TTL 1 s, two burners (both cores of this machine busy). */
export const defaults = { trials: 200, concurrency: 4, ttlMillis: 1_000, burners: 2, margins: "both" } as const

/** Which margin a trial ran with (see the module comment). */
export type Mode = "measured" | "constant"

/** One trial, every time on the Effect clock in milliseconds. */
export interface Trial {
  readonly index: number
  readonly mode: Mode
  /** The interruption reached the work, minus the earliest Redis expiry: negative is in time. */
  readonly interruptMinusExpiry: number
  /** The interruption reached the work, minus the lease's local `validUntil`. */
  readonly interruptMinusValidUntil: number
  /** The interruption reached the work, minus the moment the renewer declared the lease lost (the observer's `lost`). */
  readonly interruptMinusLost: number
  /** Redis's `expired` notification arrived, minus the earliest expiry (a check of the expiry estimate). */
  readonly notifiedMinusExpiry: number | undefined
  /** What `withLease` returned: `LeaseLost(<reason>)` is expected. */
  readonly outcome: string
}

/** The trials; `afterExpiry` and `notLost` count the measured ones (the library as it is), if any were run. */
export interface Report {
  readonly options: Options
  readonly trials: ReadonlyArray<Trial>
  /** Trials whose lease was gone before the cut (the holder's own renew came too late): not timed. */
  readonly skipped: number
  readonly afterExpiry: number
  readonly notLost: number
}

/** Effect's default clock behind another object: the same time and timers, without the event-loop measurement. */
const forwardingClock = (clock: Clock.Clock): Clock.Clock => ({
  currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
  currentTimeMillis: clock.currentTimeMillis,
  currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
  currentTimeNanos: clock.currentTimeNanos,
  monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: clock.monotonicTimeNanos,
  sleep: (duration) => clock.sleep(duration)
})

/** Child processes that spin until killed, one core each; killed when the scope closes. */
const burners = (count: number) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      Array.from(
        { length: count },
        (): ChildProcess => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" })
      )
    ),
    (children) =>
      Effect.sync(() => {
        for (const child of children) child.kill("SIGKILL")
      })
  )

/** Runs the trials (see the module comment); the server, the burners and the connections live as long as the scope. */
export const run = (options: Options): Effect.Effect<Report, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const log = options.log ?? (() => {})
    const ttl = options.ttlMillis
    const next = random(options.seed)
    const server = yield* RedisTestServer.startServer()
    const direct = Context.get(yield* RedisTestServer.connectDisposable(server.url), Redis.Redis)
    // Expiry events, and a background cycle often enough that they are not much later than the expiry itself.
    yield* direct.send("CONFIG", "SET", "notify-keyspace-events", "Ex")
    yield* direct.send("CONFIG", "SET", "hz", "100")
    const notified = new Map<string, Deferred.Deferred<number>>()
    const expiredEvents = yield* direct.subscribe("__keyevent@0__:expired")
    yield* Queue.take(expiredEvents).pipe(
      Effect.flatMap((event) =>
        Effect.suspend(() => {
          const waiting = notified.get(event.message)
          return waiting === undefined ? Effect.void : Deferred.succeed(waiting, Date.now())
        })
      ),
      Effect.forever,
      Effect.forkScoped
    )
    yield* burners(options.burners)

    const constantClock = forwardingClock(yield* Clock.Clock)
    /** One trial; `undefined` when the lease was already gone at the cut (nothing to time). */
    const trial = (index: number, mode: Mode, cutAfterMillis: number): Effect.Effect<Trial | undefined, unknown> =>
      Effect.scoped(
        Effect.gen(function* () {
          const key = `timing:${options.seed}:${index}`
          const redisKey = LeaseStore.redisKeys("lease:", key).lease
          const expiredAt = yield* Deferred.make<number>()
          notified.set(redisKey, expiredAt)
          const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: server.port })
          const client = yield* RedisTestServer.connectDisposable(proxy.url)
          const store = yield* LeaseStore.makeRedis({ commandTimeout: ttl }).pipe(Effect.provide(client))
          const lostAt = yield* Deferred.make<number>()
          const observer: LeaseObserver.LeaseObserver = {
            ...LeaseObserver.noop,
            lost: () => Effect.asVoid(Deferred.succeed(lostAt, Date.now()))
          }
          const lease = yield* Lease.make.pipe(
            Effect.provideService(LeaseStore.LeaseStore, store),
            Effect.provideService(LeaseObserver.LeaseObserver, observer)
          )
          const held = yield* Deferred.make<Lease.Active>()
          const interrupted = yield* Deferred.make<{
            readonly at: number
            readonly clockAt: number
            readonly validUntil: number
          }>()
          const work = (active: Lease.Active) =>
            Deferred.succeed(held, active).pipe(
              Effect.andThen(Effect.never),
              Effect.onInterrupt(() =>
                Effect.flatMap(
                  Effect.all([Effect.sync(Date.now), nowMillis, active.current]),
                  ([at, clockAt, handle]) =>
                    Deferred.succeed(interrupted, { at, clockAt, validUntil: handle.validUntil })
                )
              )
            )
          const holding = yield* Effect.forkChild(
            Lease.withLease(key, ttl, work).pipe(
              Effect.provideService(Lease.Lease, lease),
              mode === "constant" ? Effect.provideService(Clock.Clock, constantClock) : (effect) => effect,
              Effect.match({
                onFailure: (error) =>
                  error.reason._tag === "LeaseLost" ? `LeaseLost(${error.reason.because})` : error.reason._tag,
                onSuccess: () => "returned"
              })
            )
          )
          yield* Deferred.await(held)
          yield* Effect.sleep(cutAfterMillis)
          yield* proxy.blackhole
          const expiryTime = direct.send<number>("PEXPIRETIME", redisKey)
          const atCut = yield* expiryTime
          yield* Effect.sleep(Math.max(0, (atCut - Date.now()) / 2))
          // -2: the key is gone already; the first answer stands.
          const expiry = Math.max(atCut, yield* expiryTime)
          if (expiry < 0) return undefined
          const outcome = yield* Fiber.join(holding)
          const stopped = yield* Deferred.await(interrupted).pipe(
            Effect.timeoutOrElse({
              duration: ttl,
              orElse: () => Effect.fail(new Error(`trial ${index}: the work was never interrupted (${outcome})`))
            })
          )
          const notifiedAt = yield* Deferred.await(expiredAt).pipe(
            Effect.timeout(ttl),
            Effect.catch(() => Effect.succeed(undefined))
          )
          notified.delete(redisKey)
          return {
            index,
            mode,
            interruptMinusExpiry: stopped.at - expiry,
            interruptMinusValidUntil: stopped.clockAt - stopped.validUntil,
            interruptMinusLost: stopped.at - (yield* Deferred.await(lostAt)),
            notifiedMinusExpiry: notifiedAt === undefined ? undefined : notifiedAt - expiry,
            outcome
          }
        })
      )

    log(
      `timing: seed ${options.seed}, ${options.trials} trials (${options.concurrency} at once), TTL ${ttl} ms, ${options.burners} CPU burners`
    )
    const cuts = Array.from({ length: options.trials }, () => ttl * (0.5 + next()))
    const modeOf = (index: number): Mode =>
      options.margins !== "both" ? options.margins : index % 2 === 0 ? "constant" : "measured"
    const results = yield* Effect.forEach(
      cuts,
      (cut, index) =>
        Effect.tap(trial(index, modeOf(index), cut), (result) =>
          Effect.sync(() => {
            if (result === undefined) log(`trial ${index}: the lease was gone at the cut (skipped)`)
            else if (result.interruptMinusExpiry >= 0) {
              log(
                `trial ${index} (${result.mode}): interrupted ${result.interruptMinusExpiry.toFixed(1)} ms AFTER the expiry`
              )
            }
          })
        ),
      { concurrency: options.concurrency }
    )
    const trials = results.filter((result) => result !== undefined)
    const measured = trials.filter((t) => t.mode === "measured")
    return {
      options,
      trials,
      skipped: results.length - trials.length,
      afterExpiry: measured.filter((t) => t.interruptMinusExpiry >= 0).length,
      notLost: measured.filter((t) => !t.outcome.startsWith("LeaseLost")).length
    }
  })

const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

/** min, p10, p50, p90, p99, max of some numbers, in ms. */
export const distribution = (values: ReadonlyArray<number>): string => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => quantile(sorted, q).toFixed(1)
  return `min ${(sorted[0] ?? Number.NaN).toFixed(1)}, p10 ${at(0.1)}, p50 ${at(0.5)}, p90 ${at(0.9)}, p99 ${at(0.99)}, max ${(sorted.at(-1) ?? Number.NaN).toFixed(1)} ms`
}

const count = (items: ReadonlyArray<string>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1
  return counts
}

/** A human summary of a report: the distributions of each mode. */
export const summary = (report: Report): string => {
  const modes: ReadonlyArray<Mode> =
    report.options.margins === "both" ? ["constant", "measured"] : [report.options.margins]
  const lines = [
    `timing: seed ${report.options.seed}, ${report.trials.length} trials timed (${report.skipped} skipped), TTL ${report.options.ttlMillis} ms, ${report.options.burners} CPU burners`
  ]
  for (const mode of modes) {
    const trials = report.trials.filter((t) => t.mode === mode)
    const notified = trials.flatMap((t) => (t.notifiedMinusExpiry === undefined ? [] : [t.notifiedMinusExpiry]))
    const after = trials.filter((t) => t.interruptMinusExpiry >= 0).length
    lines.push(
      `${mode} margin (${trials.length} trials):`,
      `  interrupt - Redis expiry:      ${distribution(trials.map((t) => t.interruptMinusExpiry))}`,
      `  interrupt - local validUntil:  ${distribution(trials.map((t) => t.interruptMinusValidUntil))}`,
      `  interrupt - declared lost:     ${distribution(trials.map((t) => t.interruptMinusLost))}`,
      `  expired notice - expiry:       ${distribution(notified)} (${notified.length} notices)`,
      `  interrupted after the expiry:  ${after} of ${trials.length}`,
      `  outcomes: ${JSON.stringify(count(trials.map((t) => t.outcome)))}`
    )
  }
  return lines.join("\n")
}
