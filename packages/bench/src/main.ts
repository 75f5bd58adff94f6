/**
 * The bench: leasehold against the Node lock libraries on one local redis-server.
 *
 *   pnpm bench                    quick mode (under two minutes on 2 cores), prints the tables
 *   pnpm bench -- --full          full mode (BENCH_FULL=1 too): the sizes; writes docs/benchmarks.md + .svg
 *                                 (only when every scenario and library ran)
 *   --only seq,contend            run only these scenarios
 *   --subjects leasehold,redlock  run only these libraries (the baselines are always kept)
 *   --docs DIR                    write benchmarks.md and benchmarks.svg into DIR (any mode)
 *   --json FILE                   save the raw results
 *   --from FILE                   measure nothing: print the report (and write the docs) of a run saved by --json
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { panelsOf, renderChart } from "./chart.ts"
import { now } from "./clock.ts"
import { closeAll, connectAll, progress } from "./live.ts"
import { describeMachine, type Machine } from "./machine.ts"
import { installCleanup, killAll } from "./procs.ts"
import { connectAdmin, startServer } from "./redis.ts"
import { renderDocs, renderReport } from "./report.ts"
import type { ScenarioResult } from "./results.ts"
import { runContendScenario } from "./scenarios/contend.ts"
import { runContendProcsScenario } from "./scenarios/contendProcs.ts"
import { runHoldManyScenario } from "./scenarios/holdMany.ts"
import { runMemScenario } from "./scenarios/mem.ts"
import { runRenewScenario } from "./scenarios/renew.ts"
import { runThroughputScenario } from "./scenarios/throughput.ts"
import { full, quick, type Settings } from "./settings.ts"
import { specs } from "./subjects/index.ts"
import type { ScenarioId } from "./subjects/Subject.ts"

const scenarioIds: ReadonlyArray<ScenarioId> = ["seq", "par64", "contend", "renew", "contend-procs", "hold-many", "mem"]
const repoDocs = fileURLToPath(new URL("../../../docs", import.meta.url))

const usage = `usage: pnpm bench [-- --full] [--only ${scenarioIds.join(",")}] [--subjects ${specs.map((s) => s.id).join(",")}]
                  [--docs DIR] [--json FILE] [--from FILE]`

const parseArgs = (argv: ReadonlyArray<string>) => {
  const args = argv.filter((arg) => arg !== "--")
  const value = (flag: string) => {
    const index = args.indexOf(flag)
    if (index < 0) return undefined
    const next = args[index + 1]
    if (next === undefined || next.startsWith("--")) throw new Error(`${flag} needs a value\n${usage}`)
    return next
  }
  const list = (flag: string) =>
    value(flag)
      ?.split(",")
      .filter((item) => item !== "")
  const known = new Set(["--full", "--only", "--subjects", "--docs", "--json", "--from", "--help"])
  const flags = args.filter((arg) => arg.startsWith("--"))
  const unknown = flags.find((flag) => !known.has(flag))
  if (unknown !== undefined) throw new Error(`unknown option ${unknown}\n${usage}`)
  const envFull = process.env.BENCH_FULL !== undefined && !["", "0", "false"].includes(process.env.BENCH_FULL)
  const isFull = args.includes("--full") || envFull
  const only = list("--only") ?? scenarioIds
  for (const id of only)
    if (!scenarioIds.includes(id as ScenarioId)) throw new Error(`unknown scenario ${id}\n${usage}`)
  const subjects = list("--subjects")
  for (const id of subjects ?? [])
    if (!specs.some((s) => s.id === id)) throw new Error(`unknown subject ${id}\n${usage}`)
  return {
    help: args.includes("--help"),
    settings: isFull ? full : quick,
    only: only as ReadonlyArray<ScenarioId>,
    subjects,
    // Only a complete full run rewrites the repository's page by default: a run of some scenarios or some libraries
    // would replace it with a partial one (use --docs DIR to write one anyway).
    docsDir:
      value("--docs") ?? (isFull && list("--only") === undefined && subjects === undefined ? repoDocs : undefined),
    jsonFile: value("--json"),
    fromFile: value("--from")
  }
}

/** A finished run: what `--json` saves and `--from` reads back. */
interface Run {
  readonly machine: Machine
  readonly settings: Settings
  readonly elapsed: number
  readonly results: ReadonlyArray<ScenarioResult>
}

const measure = async (options: ReturnType<typeof parseArgs>): Promise<Run> => {
  const { settings } = options
  const started = now()
  const chosen = specs.filter(
    (spec) => options.subjects === undefined || spec.role !== "peer" || options.subjects.includes(spec.id)
  )
  const runs = (id: ScenarioId) => options.only.includes(id)
  progress(`leasehold bench, ${settings.mode} mode: starting redis-server`)
  const server = await startServer()
  const admin = await connectAdmin(server.url)
  const results: Array<ScenarioResult> = []
  try {
    const machine = describeMachine(await admin.version())
    for (const id of ["seq", "par64"] as const) {
      if (runs(id)) {
        results.push(await runThroughputScenario(id, chosen, server.url, admin, settings[id], settings.ttlMillis))
      }
    }
    const inProcess: ReadonlyArray<ScenarioId> = ["contend", "renew"]
    if (inProcess.some(runs)) {
      const live = await connectAll(chosen, { url: server.url, ttlMillis: settings.ttlMillis })
      try {
        if (runs("contend")) results.push(await runContendScenario(live, admin, settings.contend))
        if (runs("renew")) results.push(await runRenewScenario(live, admin, settings.renew))
      } finally {
        await closeAll(live)
      }
    }
    if (runs("contend-procs")) {
      results.push(await runContendProcsScenario(chosen, server.url, admin, settings.contendProcs, settings.ttlMillis))
    }
    if (runs("hold-many")) results.push(await runHoldManyScenario(chosen, server.url, admin, settings.holdMany))
    if (runs("mem")) results.push(await runMemScenario(chosen, server.url, admin, settings.mem))
    const order = (result: ScenarioResult) => scenarioIds.indexOf(result.id)
    results.sort((a, b) => order(a) - order(b))
    return { machine, settings, elapsed: (now() - started) / 1000, results }
  } finally {
    await admin.close()
    await server.close()
    killAll()
  }
}

const publish = (run: Run, options: ReturnType<typeof parseArgs>) => {
  const { machine, settings, elapsed, results } = run
  console.log(renderReport(results, machine, settings, elapsed))
  if (options.jsonFile !== undefined) fs.writeFileSync(options.jsonFile, `${JSON.stringify(run, null, 2)}\n`)
  if (options.docsDir !== undefined) {
    fs.mkdirSync(options.docsDir, { recursive: true })
    const caption = `leasehold bench, ${settings.mode} mode, ${machine.date.slice(0, 10)}, ${machine.cpu} × ${machine.cores}`
    fs.writeFileSync(path.join(options.docsDir, "benchmarks.svg"), renderChart(panelsOf(results), caption))
    fs.writeFileSync(
      path.join(options.docsDir, "benchmarks.md"),
      renderDocs(results, machine, settings, elapsed, "benchmarks.svg")
    )
    progress(`wrote ${path.join(options.docsDir, "benchmarks.md")} and benchmarks.svg`)
  }
}

const main = async () => {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) {
    console.log(usage)
    return
  }
  if (options.fromFile !== undefined) {
    publish(JSON.parse(fs.readFileSync(options.fromFile, "utf8")) as Run, options)
    return
  }
  installCleanup(options.settings.watchdogMs)
  publish(await measure(options), options)
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error)
    killAll()
    process.exit(1)
  }
)
