/**
 * The common interface of every lock library the bench measures, and of the raw baselines.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"

/**
 * A lock held with automatic renewal until `release`.
 * - `owned`: whether the holder still believes it holds the lock AND Redis agrees.
 * - `release`: stops the renewals and releases the lock.
 *
 * @category models
 * @since 0.1.0
 */
export interface Hold {
  readonly owned: () => Promise<boolean>
  readonly release: () => Promise<void>
}

/**
 * One library behind the bench's interface. A capability a library does not have is absent, and its `Spec` says
 * why in `unsupported`.
 * - `acquireRelease(key)`: one acquire (no waiting) and one release; throws if the key was held.
 * - `withLock(key, work)`: waits for the key, runs `work` while holding it, releases it.
 * - `hold(key, ttlMillis)`: acquires the key with automatic renewal every so often, until released.
 * - `close`: closes the library's connections.
 *
 * @category models
 * @since 0.1.0
 */
export interface Subject {
  readonly acquireRelease?: (key: string) => Promise<void>
  readonly withLock?: <A>(key: string, work: () => Promise<A>) => Promise<A>
  readonly hold?: (key: string, ttlMillis: number) => Promise<Hold>
  readonly close: () => Promise<void>
}

/**
 * The scenarios of the bench.
 *
 * @category models
 * @since 0.1.0
 */
export type ScenarioId = "seq" | "par64" | "contend" | "contend-procs" | "renew" | "hold-many" | "mem"

/**
 * Options every subject is made with: the Redis URL and the lock TTL of the non-renewing scenarios.
 *
 * @category models
 * @since 0.1.0
 */
export interface SubjectOptions {
  readonly url: string
  readonly ttlMillis: number
}

/**
 * What the bench knows about a subject before running it.
 * - `id`: a short name used on the command line and between processes.
 * - `name`: the name shown in the tables.
 * - `role`: `leasehold`, a `peer` library (the targets compare with these), or a `baseline` (raw client code).
 * - `unsupported`: for each scenario it cannot run, the reason (printed as a footnote).
 * - `make`: connects and returns the subject (the library is imported lazily).
 *
 * @category models
 * @since 0.1.0
 */
export interface Spec {
  readonly id: string
  readonly name: string
  readonly role: "leasehold" | "peer" | "baseline"
  readonly unsupported: Partial<Record<ScenarioId, string>>
  readonly make: (options: SubjectOptions) => Promise<Subject>
}

/**
 * A random token for the raw baselines (128 bits, hex).
 *
 * @category utils
 * @since 0.1.0
 */
export const randomToken = (): string => randomBytes(16).toString("hex")

/**
 * A held lock for libraries that only hold inside a callback (`using()`): the routine reports the hold and waits
 * until `release` is called; `release` then waits for `using` to finish (and release). `owned` answers from the
 * routine's own arguments.
 *
 * @category constructors
 * @since 0.1.0
 */
export const holdInside = <Args extends Array<unknown>>(
  using: (routine: (...args: Args) => Promise<void>) => Promise<void>,
  owned: (...args: Args) => Promise<boolean>
): Promise<Hold> =>
  new Promise((resolve, reject) => {
    let letGo = () => {}
    const released = new Promise<void>((done) => {
      letGo = done
    })
    const run: Promise<void> = using(async (...args) => {
      resolve({
        owned: () => owned(...args),
        release: () => {
          letGo()
          return run
        }
      })
      await released
    })
    run.catch(reject)
  })

/**
 * Raised when a single acquire found the key held.
 *
 * @category errors
 * @since 0.1.0
 */
export class NotAcquired extends Error {
  override readonly name = "NotAcquired"
}
