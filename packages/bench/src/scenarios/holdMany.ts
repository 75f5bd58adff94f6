/**
 * `hold-many`: thousands of leases held at once with automatic renewal, each subject in a fresh worker process:
 * CPU, memory and renew commands per held lease, and leases lost. The baseline is the one-timer-per-lock design.
 *
 * @since 0.1.0
 */
import { bounded, now, sleep } from "../clock.ts"
import { plural } from "../format.ts"
import { progress } from "../live.ts"
import { collectGarbage, inPool } from "../pool.ts"
import type { HoldManyOptions } from "../protocol.ts"
import { type Admin, connectAdmin, scriptCalls } from "../redis.ts"
import { collector, type Metrics, rotate, type ScenarioResult } from "../results.ts"
import { specOf } from "../subjects/index.ts"
import type { Hold, Spec } from "../subjects/Subject.ts"
import { measureInFreshWorker } from "../workerProcess.ts"

const MB = 1024 * 1024

/**
 * In the worker: connects the subject, warms it up, takes a memory baseline (after GC), acquires the leases, then
 * over `holdMs` measures CPU time (`process.cpuUsage`) and script calls (`INFO commandstats` after
 * `CONFIG RESETSTAT`), then memory again (after GC), then checks every lease is still owned, and releases them.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const measureHoldMany = async (options: HoldManyOptions): Promise<Metrics> => {
  const subject = await specOf(options.subject).make({ url: options.url, ttlMillis: options.ttlMillis })
  const admin = await connectAdmin(options.url)
  try {
    const hold = subject.hold
    if (hold === undefined) throw new Error(`${options.subject} cannot hold leases`)
    const take = (count: number, prefix: string) => {
      const holds: Array<Hold> = []
      return inPool(count, options.concurrency, async (i) => {
        holds.push(await hold(`bench:hold-many:${options.subject}:${prefix}:${i}`, options.ttlMillis))
      }).then(
        () => holds,
        async (error) => {
          await inPool(holds.length, options.concurrency, (i) => holds[i]!.release()).catch(() => {})
          throw error
        }
      )
    }
    const warm = await take(Math.min(100, options.leases), "warm")
    await inPool(warm.length, options.concurrency, (i) => warm[i]!.release())
    await collectGarbage()
    const before = process.memoryUsage()
    const acquireStart = now()
    const holds = await take(options.leases, "held")
    const acquireMs = now() - acquireStart
    await admin.resetStats()
    const cpuStart = process.cpuUsage()
    const start = now()
    await sleep(options.holdMs)
    const cpu = process.cpuUsage(cpuStart)
    const heldMs = now() - start
    const calls = await admin.commandCalls()
    await collectGarbage()
    const during = process.memoryUsage()
    let lost = 0
    await inPool(holds.length, options.concurrency, async (i) => {
      if (!(await holds[i]!.owned())) lost++
    })
    await inPool(holds.length, options.concurrency, (i) => holds[i]!.release())
    const cpuSeconds = (cpu.user + cpu.system) / 1e6
    const seconds = heldMs / 1000
    return {
      leases: holds.length,
      acquireMs,
      heldMs,
      lost,
      cpuSeconds,
      cpuMicrosPerLeaseSecond: (cpuSeconds * 1e6) / holds.length / seconds,
      rssMB: during.rss / MB,
      rssPerLease: (during.rss - before.rss) / holds.length,
      heapPerLease: (during.heapUsed - before.heapUsed) / holds.length,
      renewPerSec: scriptCalls(calls) / seconds,
      renewPerLeaseSec: scriptCalls(calls) / holds.length / seconds
    }
  } finally {
    await bounded(subject.close(), 10_000, "close").catch(() => {})
    await admin.close()
  }
}

/**
 * Settings of `hold-many`: which subjects, how many leases, their TTL, how long they are held, rounds.
 *
 * @category models
 * @since 0.1.0
 */
export interface HoldManySettings {
  readonly subjects: ReadonlyArray<string>
  readonly rounds: number
  readonly leases: number
  readonly ttlMillis: number
  readonly holdMs: number
  readonly concurrency: number
}

/**
 * Runs `hold-many`: per round and subject (interleaved), a fresh worker process does `measureHoldMany`; the server
 * is flushed before each.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runHoldManyScenario = async (
  specs: ReadonlyArray<Spec>,
  url: string,
  admin: Admin,
  settings: HoldManySettings
): Promise<ScenarioResult> => {
  const chosen = specs.filter((spec) => spec.id === "leasehold" || settings.subjects.includes(spec.id))
  const results = collector(chosen, "hold-many")
  const runnable = chosen.filter((spec) => spec.unsupported["hold-many"] === undefined)
  for (let round = 0; round < settings.rounds; round++) {
    for (const spec of rotate(runnable, round)) {
      await admin.flushAll()
      const options: HoldManyOptions = { ...settings, subject: spec.id, url }
      const m = await measureInFreshWorker(
        { type: "hold-many", options },
        settings.holdMs + settings.leases * 10 + 60_000,
        (error) => results.error(spec.id, error)
      )
      if (m === undefined) continue
      results.add(spec.id, m)
      progress(
        `hold-many round ${round + 1}/${settings.rounds} ${spec.name}: ${m.lost} lost, ` +
          `${m.cpuSeconds!.toFixed(2)} CPU s, ${Math.round(m.rssPerLease!)} B RSS per lease`
      )
    }
  }
  return {
    id: "hold-many",
    setup:
      `${settings.leases.toLocaleString("en-US")} leases with TTL ${settings.ttlMillis / 1000} s held at once with ` +
      `automatic renewal for ${settings.holdMs / 1000} s, each library in a fresh process (--expose-gc), ` +
      `${plural(settings.rounds, "round")}`,
    rows: results.rows()
  }
}
