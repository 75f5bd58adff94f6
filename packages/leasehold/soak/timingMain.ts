/**
 * The timing command: `node packages/leasehold/soak/timingMain.ts [--trials 200] [--concurrency 4] [--ttl 1000]
 * [--burners 2] [--seed N] [--margins both|measured|constant]` (TTL in milliseconds). Trials alternate between the
 * constant margin and the measured one, or run one of them only. It prints the seed first (a run is replayed with
 * `--seed`), each trial that was interrupted after the Redis expiry, and the distributions of each margin; it exits
 * with 1 when a trial with the measured margin (the library as it is) was interrupted after the expiry.
 */
import { parseArgs } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, References } from "effect"
import * as Timing from "./Timing.ts"

const { values } = parseArgs({
  options: {
    trials: { type: "string" },
    concurrency: { type: "string" },
    ttl: { type: "string" },
    burners: { type: "string" },
    seed: { type: "string" },
    margins: { type: "string" }
  }
})

const whole = (name: string, text: string | undefined, fallback: number, min = 1): number => {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value < min)
    throw new Error(`--${name} must be a whole number >= ${min}, got ${text}`)
  return value
}

const marginsOf = (text: string | undefined): Timing.Options["margins"] => {
  if (text === undefined) return Timing.defaults.margins
  if (text === "both" || text === "measured" || text === "constant") return text
  throw new Error(`--margins must be both, measured or constant, got ${text}`)
}

const options: Timing.Options = {
  trials: whole("trials", values.trials, Timing.defaults.trials),
  concurrency: whole("concurrency", values.concurrency, Timing.defaults.concurrency),
  ttlMillis: whole("ttl", values.ttl, Timing.defaults.ttlMillis, 100),
  burners: whole("burners", values.burners, Timing.defaults.burners, 0),
  seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : whole("seed", values.seed, 1, 0),
  margins: marginsOf(values.margins),
  log: (line) => console.log(line)
}

console.log(`timing: seed ${options.seed} (replay with --seed ${options.seed})`)

// The holders' failed releases after each cut are expected; their warnings would bury the results.
const program = Effect.scoped(Timing.run(options)).pipe(
  Effect.provideService(References.MinimumLogLevel, "Error"),
  Effect.flatMap((report) =>
    Effect.sync(() => {
      console.log(Timing.summary(report))
      process.exitCode = report.afterExpiry === 0 && report.notLost === 0 ? 0 : 1
    })
  )
)

NodeRuntime.runMain(program)
