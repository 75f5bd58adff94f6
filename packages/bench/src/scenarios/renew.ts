/**
 * `renew`: one lease with a short TTL held for a few seconds with automatic renewal: is it still owned at the end,
 * and how many renew commands did it take (script calls in `INFO commandstats`, counted from just after the acquire)
 * against the expected one per TTL/3.
 *
 * @since 0.1.0
 */
import { bounded, messageOf, now, sleep } from "../clock.ts"
import { plural } from "../format.ts"
import { type Live, progress } from "../live.ts"
import { type Admin, scriptCalls } from "../redis.ts"
import { collector, rotate, type ScenarioResult } from "../results.ts"

/**
 * Settings of `renew`.
 *
 * @category models
 * @since 0.1.0
 */
export interface RenewSettings {
  readonly rounds: number
  readonly ttlMillis: number
  readonly holdMs: number
}

/**
 * Runs `renew`, one subject at a time (the command statistics are the server's): acquire, `CONFIG RESETSTAT`, hold,
 * read `INFO commandstats`, check ownership, release. Metrics: `owned` (1 or 0), `commands` (script calls),
 * `expected` (whole TTL/3 intervals between the acquire and the reading), `perExpected`.
 *
 * @category scenarios
 * @since 0.1.0
 */
export const runRenewScenario = async (
  live: ReadonlyArray<Live>,
  admin: Admin,
  settings: RenewSettings
): Promise<ScenarioResult> => {
  const results = collector(
    live.map((l) => l.spec),
    "renew"
  )
  const runnable = live.filter((l) => l.spec.unsupported.renew === undefined)
  for (const l of runnable) if (l.error !== undefined) results.error(l.spec.id, l.error)
  const ready = runnable.filter((l) => l.subject?.hold !== undefined)
  const interval = settings.ttlMillis / 3
  for (let round = 0; round < settings.rounds; round++) {
    for (const l of rotate(ready, round)) {
      try {
        const key = `bench:renew:${round}:${l.spec.id}`
        const hold = await bounded(l.subject!.hold!(key, settings.ttlMillis), 10_000, "the acquire")
        const acquiredAt = now()
        await admin.resetStats()
        // Read half an interval after a renewal is due, so that a renewal on time is not cut by the window's edge.
        await sleep(acquiredAt + settings.holdMs + interval / 2 - now())
        const commands = scriptCalls(await admin.commandCalls())
        const expected = Math.floor((now() - acquiredAt) / interval)
        const owned = await bounded(hold.owned(), 10_000, "the ownership check")
        await bounded(hold.release(), 10_000, "the release")
        results.add(l.spec.id, { owned: owned ? 1 : 0, commands, expected, perExpected: commands / expected })
        progress(
          `renew round ${round + 1}/${settings.rounds} ${l.spec.name}: ${commands} commands (${expected} expected)`
        )
      } catch (error) {
        results.error(l.spec.id, messageOf(error))
      }
    }
  }
  return {
    id: "renew",
    setup:
      `one lease, TTL ${settings.ttlMillis} ms, held for ${settings.holdMs / 1000} s (and half a TTL/3) with automatic ` +
      `renewal, ` +
      `${plural(settings.rounds, "round")}; renew commands are the script calls ` +
      `(EVAL/EVALSHA) counted by the server from just after the acquire`,
    rows: results.rows()
  }
}
