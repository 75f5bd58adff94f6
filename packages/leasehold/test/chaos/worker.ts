/**
 * A chaos worker process: `node worker.ts '<WorkerConfig as JSON>'`. It connects to the lease store and to the
 * protected resource, prints `ready`, waits for a `Go` line on stdin, then runs `workers` fibers until the deadline
 * (or `leasesPerWorker`): each picks a key and a hold time at random (seeded), holds the key with
 * `Lease.withLease`, and takes protected steps on the resource `<resource>:<key>`, each right after `ensureValid`
 * as the docs say, the last one at the end of the hold, and a last `ensureValid` before the work returns. Every
 * lease and every failed attempt is printed as a JSON line. The lease store's client is the README's
 * (`RedisTestServer.layerClient`, node-redis with leasehold's transport, with `disableOfflineQueue`, closed with the layer): once every layer is closed the process prints
 * its `result` line and exits 0, so a close that never settles shows as a missing result; it exits by itself, with
 * `stuck`, if it is still running well past its deadline.
 */
import * as readline from "node:readline"
import { RedisTestServer } from "@leasehold/testing"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, References } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseError, LeaseStore } from "leasehold"
import * as FencedResource from "./FencedResource.ts"
import {
  between,
  derive,
  type Go,
  type LeaseRecord,
  type Outcome,
  random,
  type WorkerConfig,
  type WorkerLine
} from "./protocol.ts"

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig

const emit = (line: WorkerLine): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

/** Exits once everything written to stdout has been handed to the pipe: `process.exit` would drop the rest. */
const exitFlushed = (code: number) => process.stdout.write("", () => process.exit(code))

/** The parent's `Go` line. */
const go = Effect.callback<Go>((resume) => {
  const lines = readline.createInterface({ input: process.stdin })
  lines.once("line", (line) => {
    lines.close()
    resume(Effect.succeed(JSON.parse(line) as Go))
  })
})

/** How a `withLease` ended: a defect, a failure other than a `LeaseError`, or a bare interruption each say so. */
const outcomeOf = (exit: Exit.Exit<unknown, LeaseError.LeaseError | Redis.RedisError>): Outcome => {
  if (Exit.isSuccess(exit)) return "completed"
  if (Cause.hasDies(exit.cause)) return "defect"
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error)) return "interrupted"
  if (!LeaseError.isLeaseError(error.value)) return "error"
  const reason = error.value.reason
  if (reason._tag === "LeaseLost") return `lost:${reason.because}`
  if (reason._tag === "AcquireTimeout") return "acquire-timeout"
  if (reason._tag === "StoreUnavailable") return "store-unavailable"
  return `failed:${reason._tag}`
}

const program = Effect.gen(function* () {
  const leaseClient = yield* Layer.build(
    RedisTestServer.layerClient({ url: config.leaseUrl, disableOfflineQueue: true })
  )
  const resourceClient = yield* RedisTestServer.connectDisposable(config.resourceUrl)
  const leaseContext = yield* Layer.build(
    Lease.layer.pipe(
      Layer.provide(LeaseStore.layerRedis({ commandTimeout: Duration.millis(config.commandTimeoutMillis) })),
      Layer.provide(Layer.succeedContext(leaseClient))
    )
  )
  const lease = Context.get(leaseContext, Lease.Lease)
  const resourceRedis = Context.get(resourceClient, Redis.Redis)
  emit({ type: "ready", pid: process.pid })
  const { untilEpochMillis } = yield* go
  emit({ type: "going" })

  // Stuck well past the deadline (a bug, or a fault that never healed): report it and exit rather than hang.
  const limit = untilEpochMillis - Date.now() + config.waitMillis + 4 * config.ttlMillis + 10_000
  setTimeout(() => {
    emit({ type: "stuck" })
    exitFlushed(3)
  }, limit).unref()

  let leases = 0
  let attempts = 0
  const worker = (index: number) =>
    Effect.gen(function* () {
      const holder = `${config.id}/${index}`
      const next = random(derive(config.seed, holder))
      for (let n = 0; Date.now() < untilEpochMillis && n < (config.leasesPerWorker ?? Number.POSITIVE_INFINITY); n++) {
        const key = config.keys[Math.floor(next() * config.keys.length)]!
        const holdMillis = between(next, config.holdMillis[0], config.holdMillis[1])
        const record = {
          fence: undefined as bigint | undefined,
          startedAt: 0,
          workEndedAt: undefined as number | undefined,
          steps: 0,
          staleSteps: 0,
          unheldSteps: 0
        }
        const resource = FencedResource.make(resourceRedis, `${config.resource}:${key}`)
        const work = (active: Lease.Active) =>
          Effect.gen(function* () {
            record.fence = active.fence
            record.startedAt = Date.now()
            const token = (yield* active.current).token
            const end = performance.now() + holdMillis
            while (true) {
              yield* active.ensureValid
              const step = yield* resource.step({
                fence: active.fence,
                holder,
                lease: config.checkLease ? { key, token } : undefined
              })
              record.steps++
              if (step.verdict === "stale") record.staleSteps++
              if (step.lease === "expired" || step.lease === "stolen") record.unheldSteps++
              if (performance.now() >= end) break
              yield* Effect.sleep(Duration.millis(config.stepEveryMillis))
            }
            // The work counts only if the lease was still valid when it ended: its result is a protected step too.
            const endedAt = Date.now()
            yield* active.ensureValid
            record.workEndedAt = endedAt
          })
        const exit = yield* Effect.exit(
          Lease.withLease(key, Duration.millis(config.ttlMillis), work, {
            wait: Duration.millis(config.waitMillis),
            owner: { id: holder, pid: process.pid }
          }).pipe(Effect.provideService(Lease.Lease, lease))
        )
        const outcome = outcomeOf(exit)
        const detail =
          Exit.isFailure(exit) && outcome !== "acquire-timeout" ? Cause.pretty(exit.cause).slice(0, 300) : undefined
        if (record.fence === undefined) {
          attempts++
          emit({ type: "attempt", holder, key, at: Date.now(), outcome, detail })
          // Back off before the next try, as a real worker would: an unreachable store fails at once.
          yield* Effect.sleep(Duration.millis(between(next, config.ttlMillis / 10, config.ttlMillis / 4)))
          continue
        }
        leases++
        const line: LeaseRecord = {
          type: "lease",
          holder,
          key,
          fence: String(record.fence),
          startedAt: record.startedAt,
          workEndedAt: record.workEndedAt,
          endedAt: Date.now(),
          steps: record.steps,
          staleSteps: record.staleSteps,
          unheldSteps: record.unheldSteps,
          outcome,
          detail
        }
        emit(line)
      }
    })
  yield* Effect.forEach(
    Array.from({ length: config.workers }, (_, index) => index),
    (index) => worker(index),
    { concurrency: "unbounded", discard: true }
  )
  return { leases, attempts, doneAt: performance.now() }
}).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Error"))

Effect.runPromise(program).then(
  ({ leases, attempts, doneAt }) => {
    emit({ type: "result", leases, attempts, closeMillis: Math.round(performance.now() - doneAt) })
    exitFlushed(0)
  },
  (error) => {
    process.stderr.write(`worker failed: ${String(error)}\n`)
    exitFlushed(1)
  }
)
