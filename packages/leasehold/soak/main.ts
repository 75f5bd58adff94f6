/**
 * The soak command: `node packages/leasehold/soak/main.ts [--duration 60] [--seed N] [--processes 3] [--workers 4]
 * [--keys 3] [--ttl 1000]` (duration in seconds, TTL in milliseconds). It prints the seed first (a run is replayed
 * with `--seed`), each fault as it is injected, and a summary; it exits with 1 when the soak found a violation.
 */
import { parseArgs } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Soak from "./Soak.ts"

const { values } = parseArgs({
  options: {
    duration: { type: "string" },
    seed: { type: "string" },
    processes: { type: "string" },
    workers: { type: "string" },
    keys: { type: "string" },
    ttl: { type: "string" }
  }
})

const positive = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${text}`)
  return value
}

const options: Soak.Options = {
  durationMillis: positive("duration", values.duration, Soak.defaults.durationMillis / 1000) * 1000,
  seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Math.floor(positive("seed", values.seed, 1)),
  processes: Math.floor(positive("processes", values.processes, Soak.defaults.processes)),
  workersPerProcess: Math.floor(positive("workers", values.workers, Soak.defaults.workersPerProcess)),
  keys: Math.floor(positive("keys", values.keys, Soak.defaults.keys)),
  ttlMillis: Math.floor(positive("ttl", values.ttl, Soak.defaults.ttlMillis)),
  log: (line) => console.log(line)
}

console.log(`soak: seed ${options.seed} (replay with --seed ${options.seed})`)

const program = Effect.scoped(Soak.run(options)).pipe(
  Effect.flatMap((report) =>
    Effect.sync(() => {
      console.log(Soak.summary(report))
      process.exitCode = report.ok ? 0 : 1
    })
  )
)

NodeRuntime.runMain(program)
