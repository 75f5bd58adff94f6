/**
 * The report: the tables of every scenario with their target lines, printed by every run, and the page
 * docs/benchmarks.md written by the full run (the same tables, the machine, the method, and a reading of the results
 * generated from the verdicts).
 *
 * @since 0.1.0
 */

import { plural } from "./format.ts"
import type { Machine } from "./machine.ts"
import type { ScenarioResult } from "./results.ts"
import type { Settings } from "./settings.ts"
import type { ScenarioId } from "./subjects/Subject.ts"
import { renderTable } from "./tables.ts"
import { checkTargets, type Verdict } from "./targets.ts"

/**
 * The heading of each scenario.
 *
 * @category report
 * @since 0.1.0
 */
export const titles: Record<ScenarioId, string> = {
  seq: "seq: acquire+release, one client",
  par64: "par64: acquire+release, 64 concurrent workers",
  contend: "contend: 8 workers, one key",
  "contend-procs": "contend-procs: 4 processes × 2 workers, one key",
  renew: "renew: one lease, TTL 300 ms, held with automatic renewal",
  "hold-many": "hold-many: many leases held at once",
  mem: "mem: memory after many acquire+release cycles"
}

const verdictLine = (v: Verdict) => `- ${v.kind === "check" ? `CHECK ${v.status}` : v.status} ${v.text}`

const sections = (results: ReadonlyArray<ScenarioResult>, verdicts: ReadonlyArray<Verdict>) =>
  results.map((result) => {
    const lines = verdicts.filter((v) => v.scenario === result.id).map(verdictLine)
    return [
      `### ${titles[result.id]}`,
      "",
      `${result.setup.charAt(0).toUpperCase()}${result.setup.slice(1)}.`,
      "",
      renderTable(result),
      ...(lines.length > 0 ? ["", ...lines] : [])
    ].join("\n")
  })

const summaryOf = (verdicts: ReadonlyArray<Verdict>) => {
  const count = (status: Verdict["status"]) => verdicts.filter((v) => v.kind === "target" && v.status === status).length
  return `${count("PASS")} PASS, ${count("MISS")} MISS${count("NONE") > 0 ? `, ${count("NONE")} not measured` : ""}`
}

const machineLine = (machine: Machine) =>
  `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}, ` +
  `redis-server ${machine.redis}; load average ${machine.loadBefore.map((l) => l.toFixed(2)).join(" ")} at the start`

/**
 * The report printed at the end of a run.
 *
 * @category report
 * @since 0.1.0
 */
export const renderReport = (
  results: ReadonlyArray<ScenarioResult>,
  machine: Machine,
  settings: Settings,
  elapsedSeconds: number
): string => {
  const verdicts = checkTargets(results)
  return [
    `## leasehold bench (${settings.mode} mode)`,
    "",
    machineLine(machine),
    "",
    ...sections(results, verdicts).flatMap((section) => [section, ""]),
    `Targets: ${summaryOf(verdicts)}. The ${settings.mode} run took ${elapsedSeconds.toFixed(1)} s.`
  ].join("\n")
}

const method = (settings: Settings) => {
  const { seq, par64, contend, contendProcs, renew, holdMany, mem } = settings
  return [
    '- One `redis-server` started by the bench on a free loopback port (`--save "" --appendonly no`), shared by every library; the server is flushed between rounds. Every library runs through its public API with its default settings; only the TTL is chosen by the bench (10 s where no renewal is involved).',
    "- leasehold: `Lease.acquire`/`Lease.release` for cycles, `Lease.withLease` for contention, `Lease.hold` for held leases, over `LeaseStore.layerRedis()` and `NodeRedis.layer({ url, disableOfflineQueue: true })`, each call run by `ManagedRuntime.runPromise`, as a Promise-based caller would (the bridge costs about a tenth of a `seq` cycle).",
    "- effect-distributed-lock needs Effect 3: it runs through the Promise adapter of the private package `@leasehold/bench-effect3`.",
    "- Baselines: `raw node-redis` and `raw ioredis` do `SET key token NX PX ttl` and release with a compare-and-delete script by `EVALSHA`; their waiters retry every millisecond. `raw node-redis, leasehold's scripts` acquires and releases with leasehold's own Lua scripts (`LeaseStore.redisScripts`: fence counter, owner and Redis time in a hash, release announcement) by `EVALSHA` on a node-redis client, with nothing around them: the ceiling for leasehold's Redis-side work, so that the gap between it and leasehold is what the library costs in Node. `timer-per-lock (node-redis)` is the one-timer-per-lock design: one `setInterval` per held lock, renewing it with a compare-and-`PEXPIRE` script every TTL/3.",
    "- Libraries are interleaved: each round runs every library once, in an order rotated from round to round. Every figure is the median over the rounds; [ranges] are the lowest and highest round; (×) is the ratio to the baseline measured in the same run (raw node-redis; timer-per-lock for `renew` and `hold-many`).",
    `- \`seq\`/\`par64\`: ${plural(seq.rounds, "round")} of ${seq.durationMs / 1000} s and ${plural(par64.rounds, "round")} of ${par64.durationMs / 1000} s, a fresh key per cycle; latency is one acquire+release. Each library runs in a worker process of its own for the whole scenario (one at a time): in a shared process a library ran at a third of its speed right after a fast one, in the timers and garbage it left (node-redis keeps a 5 s timer alive per command by default).`,
    `- \`contend\`: ${contend.workers} workers, ${contend.holdMs} ms of work per hold (a timer), ${plural(contend.rounds, "round")} of ${contend.durationMs / 1000} s. An owner change is a hold by another worker than the previous one; the gap is from the previous holder leaving its work to the next one entering it (so it includes the release and the hand-off), measured at owner changes only, so a library with few owner changes has few gap samples. Jain's index is over the holds per worker. Overlaps are counted by an in-process counter and cross-checked with the timestamps. "Gave up" counts waits that ended in an error (redlock gives up after 10 retries).`,
    `- \`contend-procs\`: ${contendProcs.processes} worker processes × ${contendProcs.workersPerProcess} workers, each process with its own client, ${plural(contendProcs.rounds, "round")} of ${contendProcs.durationMs / 1000} s. Overlaps are counted in Redis: \`INCR\` of a counter key on entering the hold (a reply above 1 is an overlap), \`DECR\` on leaving. Times come from the system's monotonic clock, which all processes share.`,
    `- \`renew\`: one lease, TTL ${renew.ttlMillis} ms, held ${renew.holdMs / 1000} s and half a TTL/3, ${plural(renew.rounds, "round")}; renew commands are the \`EVAL\`/\`EVALSHA\` calls in \`INFO commandstats\` after a \`CONFIG RESETSTAT\` just after the acquire (Redis also counts the commands a script runs, so scripts are what is counted). The expected count is the number of whole TTL/3 intervals in the window; one fewer is accepted (timer lateness at the window's edge), one more is not.`,
    `- \`hold-many\`: ${holdMany.leases.toLocaleString("en-US")} leases, TTL ${holdMany.ttlMillis / 1000} s, held ${holdMany.holdMs / 1000} s, each library in a fresh process run with \`--expose-gc\`: CPU time (\`process.cpuUsage\`) and script calls over the holding window only, RSS and heap after GC against a baseline taken after a warm-up, and every lease's ownership checked in Redis at the end. RSS per lease includes what the process kept from acquiring them all (${holdMany.concurrency} at a time); heap per lease is what stays live.`,
    `- \`mem\`: ${mem.cycles.toLocaleString("en-US")} acquire+release cycles (${mem.concurrency} at a time) in a fresh process after 1,000 warm-up cycles; heap and RSS after GC and the timers still pending, before, halfway and after. Growth is measured over the second half: caches that fill once show in the first.`,
    "- Every loop is bounded in time and count; the bench kills its redis-server and worker processes when it ends, fails or is interrupted."
  ]
}

const reading = (all: ReadonlyArray<Verdict>) => {
  const verdicts = all.filter((v) => v.kind === "target")
  const checks = all.filter((v) => v.kind === "check")
  const met = verdicts.filter((v) => v.status === "PASS")
  const missed = verdicts.filter((v) => v.status === "MISS")
  const none = verdicts.filter((v) => v.status === "NONE")
  const list = (items: ReadonlyArray<Verdict>) => items.map((v) => `- \`${v.scenario}\`: ${v.text}`)
  return [
    `Of the issue's targets, ${met.length} are met and ${missed.length} are missed in this run` +
      (none.length > 0 ? ` (${none.length} could not be measured)` : "") +
      ".",
    "",
    ...(missed.length > 0 ? ["Missed:", "", ...list(missed), ""] : []),
    ...(met.length > 0 ? ["Met:", "", ...list(met), ""] : []),
    ...(none.length > 0 ? ["Not measured:", "", ...list(none), ""] : []),
    ...(checks.length > 0
      ? ["The bench's own checks:", "", ...checks.map((v) => `- \`${v.scenario}\`: ${v.status} ${v.text}`), ""]
      : []),
    "How far to trust these figures: the machine has 2 cores shared by the bench, the redis-server and, in",
    "`contend-procs`, four worker processes, so a library that needs more CPU per operation is penalised more than it",
    "would be on a bigger machine, and anything else running at the time adds noise (the ranges show how much). The",
    "targets were not tuned for: leasehold runs as a user would run it."
  ]
}

/**
 * The page docs/benchmarks.md.
 *
 * @category report
 * @since 0.1.0
 */
export const renderDocs = (
  results: ReadonlyArray<ScenarioResult>,
  machine: Machine,
  settings: Settings,
  elapsedSeconds: number,
  chartFile: string
): string => {
  const verdicts = checkTargets(results)
  return [
    "# Benchmarks",
    "",
    `Generated by the bench in ${settings.mode} mode (${settings.mode === "full" ? "`pnpm bench -- --full`, or `npm run bench -- --full`" : "`pnpm bench`"}) on ${machine.date.slice(0, 10)}, in ${Math.round(elapsedSeconds)} s. \`pnpm bench -- --full\` measures again and rewrites this page and its chart; \`pnpm bench\` is a quick run (under two minutes, smaller sizes) that prints the same tables without writing them.`,
    "",
    "## Machine",
    "",
    `- ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`,
    `- load average at the start: ${machine.loadBefore.map((l) => l.toFixed(2)).join(", ")} (1, 5, 15 min)`,
    `- Node ${machine.node}, redis-server ${machine.redis} on 127.0.0.1`,
    `- ${machine.libraries.map((l) => `${l.name} ${l.version}`).join(", ")}`,
    `- run started ${machine.date}`,
    "",
    "## Method",
    "",
    ...method(settings),
    "",
    "## Results",
    "",
    `![The main figures: bars are medians, whiskers the range over rounds](${chartFile})`,
    "",
    ...sections(results, verdicts).flatMap((section) => [section, ""]),
    "## Reading",
    "",
    ...reading(verdicts),
    ""
  ].join("\n")
}
