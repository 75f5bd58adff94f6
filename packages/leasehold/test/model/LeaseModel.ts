/**
 * The reference model of a lease store: plain TypeScript, no Effect, no clock of its own. Each key maps to the
 * holder's handle (one id per token), its owner, its fence and its expiry; a fence counter per key survives the
 * leases. Every operation takes the window of time in which the store executed it, so the model also works with a
 * store on real time (Redis), where the instant of execution is only known to lie between sending the command and
 * reading the reply.
 *
 * Where that uncertainty straddles an expiry (`worlds`), the model splits into the world where the lease is still
 * live and the world where it has expired; the runner keeps the world the store's answer agrees with.
 */

/** When the store executed an operation: somewhere in `[start, end]`, in the model's milliseconds. */
export interface Window {
  readonly start: number
  readonly end: number
}

/** A value known to lie in `[min, max]`. */
export interface Range {
  readonly min: number
  readonly max: number
}

/** A held key. */
export interface Entry {
  readonly handle: number
  readonly owner: string | undefined
  readonly fence: bigint
  readonly acquiredAt: Range
  readonly expiresAt: Range
}

/** An operation's answer, with its times as `Time`: ranges when the model predicts it, numbers when a store gave it. */
export type Answer<Time> =
  | { readonly op: "acquire"; readonly tag: "Acquired"; readonly fence: bigint; readonly acquiredAt: Time }
  | { readonly op: "acquire"; readonly tag: "Held"; readonly owner: string | undefined; readonly remaining: Time }
  | { readonly op: "renew"; readonly renewed: boolean }
  | { readonly op: "release"; readonly released: boolean }
  | { readonly op: "checkOwnership"; readonly held: boolean }
  | {
      readonly op: "inspect"
      readonly info:
        | {
            readonly fence: bigint
            readonly owner: string | undefined
            readonly remaining: Time
            readonly acquiredAt: Time
          }
        | undefined
    }

/** What the model says an operation answers. */
export type Expected = Answer<Range>

/** One possible state of the store during an operation: whether the key's lease is live, and the model for it. */
export interface World {
  readonly live: boolean
  readonly model: LeaseModel
}

const range = (window: Window, plus: number): Range => ({ min: window.start + plus, max: window.end + plus })

export class LeaseModel {
  /**
   * How close to an expiry a window may come before the model cannot tell whether the lease was live: 0 for a store
   * on the TestClock (exact), a few milliseconds for Redis (its clock and ours read the same system time, but each
   * truncates it to whole milliseconds).
   */
  readonly margin: number
  private readonly entries: Map<string, Entry>
  private readonly fences: Map<string, bigint>

  constructor(margin: number, entries = new Map<string, Entry>(), fences = new Map<string, bigint>()) {
    this.margin = margin
    this.entries = entries
    this.fences = fences
  }

  private copy(): LeaseModel {
    return new LeaseModel(this.margin, new Map(this.entries), new Map(this.fences))
  }

  private without(key: string): LeaseModel {
    const model = this.copy()
    model.entries.delete(key)
    return model
  }

  /** Whether `key` has a lease entry at all (live or not yet known to have expired). */
  has(key: string): boolean {
    return this.entries.has(key)
  }

  /**
   * The worlds the store can be in for `key` during `window`: live (the window ends before the earliest expiry),
   * expired (it starts at or after the latest expiry), or, within `margin` of the expiry, both.
   */
  worlds(key: string, window: Window): ReadonlyArray<World> {
    const entry = this.entries.get(key)
    if (entry === undefined) return [{ live: false, model: this }]
    if (window.end < entry.expiresAt.min - this.margin) return [{ live: true, model: this }]
    if (window.start >= entry.expiresAt.max + this.margin) return [{ live: false, model: this.without(key) }]
    return [
      { live: true, model: this.copy() },
      { live: false, model: this.without(key) }
    ]
  }

  acquire(
    key: string,
    live: boolean,
    handle: number,
    ttl: number,
    owner: string | undefined,
    window: Window
  ): Expected {
    const held = this.entries.get(key)
    if (live && held !== undefined) {
      return {
        op: "acquire",
        tag: "Held",
        owner: held.owner,
        remaining: { min: held.expiresAt.min - window.end, max: held.expiresAt.max - window.start }
      }
    }
    const fence = (this.fences.get(key) ?? 0n) + 1n
    this.fences.set(key, fence)
    const acquiredAt = range(window, 0)
    this.entries.set(key, { handle, owner, fence, acquiredAt, expiresAt: range(window, ttl) })
    return { op: "acquire", tag: "Acquired", fence, acquiredAt }
  }

  renew(key: string, live: boolean, handle: number, ttl: number, window: Window): Expected {
    const held = this.entries.get(key)
    const renewed = live && held?.handle === handle
    if (renewed) this.entries.set(key, { ...held, expiresAt: range(window, ttl) })
    return { op: "renew", renewed }
  }

  release(key: string, live: boolean, handle: number): Expected {
    const released = live && this.entries.get(key)?.handle === handle
    if (released) this.entries.delete(key)
    return { op: "release", released }
  }

  checkOwnership(key: string, live: boolean, handle: number): Expected {
    return { op: "checkOwnership", held: live && this.entries.get(key)?.handle === handle }
  }

  inspect(key: string, live: boolean, window: Window): Expected {
    const held = this.entries.get(key)
    if (!live || held === undefined) return { op: "inspect", info: undefined }
    return {
      op: "inspect",
      info: {
        fence: held.fence,
        owner: held.owner,
        remaining: { min: held.expiresAt.min - window.end, max: held.expiresAt.max - window.start },
        acquiredAt: held.acquiredAt
      }
    }
  }

  /** The state, for failure messages. */
  describe(): string {
    const entries = [...this.entries].map(
      ([key, e]) =>
        `${key}: handle #${e.handle} owner=${e.owner ?? "-"} fence=${e.fence} expires in [${e.expiresAt.min}, ${e.expiresAt.max}]`
    )
    const fences = [...this.fences].map(([key, fence]) => `${key}=${fence}`)
    return `entries {${entries.join("; ")}} fences {${fences.join(", ")}}`
  }
}
