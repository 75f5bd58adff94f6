/**
 * A user's program, as the README writes it, for the shutdown chaos test: `node shutdownWorker.ts '<config JSON>'`.
 * It builds `Lease.layer` over `LeaseStore.layerRedis` over node-redis with leasehold's transport (`RedisTestServer.layerClient({ url })`), runs one
 * `Lease.withLease("k", "1 second", work)` with `Effect.runPromiseExit`, and prints what happened as JSON lines:
 * `fault` when the work brings the fault on (50 ms in), `returned` when `withLease` returned (with its result),
 * `closed` when the layers had closed, then exits with the result's code (0 success, 1 `LeaseError`, 2 anything
 * else). The work either outlives the lease (`workMillis` past the TTL: the result is `LeaseLost`) or ends soon
 * after the fault (the result is the work's own, whatever the release meets).
 *
 * Nothing of the program's own keeps the process alive: if the layers never finish closing and nothing else holds
 * the event loop, Node exits with code 0 and neither `returned` nor `closed` is printed, which is the bug this
 * program exists to catch.
 */
import { RedisTestServer } from "@leasehold/testing"
import { Duration, Effect, Exit, Layer, Option, References } from "effect"
import { Lease, LeaseError, LeaseStore } from "leasehold"
import type { ShutdownConfig, ShutdownLine } from "./shutdownProtocol.ts"

const config = JSON.parse(process.argv[2] ?? "{}") as ShutdownConfig
const startedAt = performance.now()
const since = () => Math.round(performance.now() - startedAt)

const emit = (line: ShutdownLine): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

const signalRedis = (signal: NodeJS.Signals) => {
  try {
    process.kill(config.redisPid, signal)
  } catch {
    // already gone
  }
}

/** The fault the work brings on; the parent applies the ones it owns (the proxy's) when it reads `fault`. */
const bringFault = Effect.sync(() => {
  if (config.fault === "pause" || config.fault === "pause-then-kill") signalRedis("SIGSTOP")
  if (config.fault === "kill") signalRedis("SIGKILL")
  emit({ type: "fault", at: since() })
})

/** After `withLease` returned: the repro's `SIGCONT` and `SIGKILL` at once, right before the layers close. */
const afterReturn = Effect.sync(() => {
  if (config.fault !== "pause-then-kill") return
  signalRedis("SIGCONT")
  signalRedis("SIGKILL")
})

const work = Effect.gen(function* () {
  yield* Effect.sleep(Duration.millis(50))
  yield* bringFault
  yield* Effect.sleep(Duration.millis(config.workMillis))
  return "the work's result"
})

const resultOf = (exit: Exit.Exit<string, unknown>): ShutdownLine & { type: "returned" } => {
  if (Exit.isSuccess(exit)) return { type: "returned", at: since(), outcome: "success", detail: exit.value }
  const error = Exit.findErrorOption(exit)
  if (Option.isSome(error) && LeaseError.isLeaseError(error.value))
    return { type: "returned", at: since(), outcome: "lease-error", detail: error.value.reason._tag }
  return { type: "returned", at: since(), outcome: "other", detail: String(exit.cause).slice(0, 300) }
}

const LeaseLive = Lease.layer.pipe(
  Layer.provide(LeaseStore.layerRedis({ commandTimeout: Duration.millis(config.commandTimeoutMillis) })),
  Layer.provide(
    RedisTestServer.layerClient(
      config.disableOfflineQueue ? { url: config.url, disableOfflineQueue: true } : { url: config.url }
    )
  )
)

const program = Effect.gen(function* () {
  const exit = yield* Effect.exit(Lease.withLease("k", "1 second", () => work))
  emit(resultOf(exit))
  yield* afterReturn
  return yield* exit
}).pipe(Effect.provide(LeaseLive), Effect.provideService(References.MinimumLogLevel, "None"))

Effect.runPromiseExit(program).then((exit) => {
  emit({ type: "closed", at: since() })
  const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : Option.none()
  process.exitCode = Exit.isSuccess(exit) ? 0 : Option.isSome(error) && LeaseError.isLeaseError(error.value) ? 1 : 2
})
