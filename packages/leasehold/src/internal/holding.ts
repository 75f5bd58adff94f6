import { Context, Deferred, Effect, type Fiber, HashMap, Option } from "effect"
import * as LeaseError from "../LeaseError.ts"
import type { LeaseKey } from "../LeaseKey.ts"
import type { Handle } from "./handle.ts"

/**
 * One hold of an auto-renewed lease (`Lease.hold`, `Lease.withLease`), as its release and the fibers under it see
 * it: the fiber that made it, the renewal (its `lease` follows the renews; set once acquired), the loss signal, and
 * whether its scope has closed.
 */
export class Holding {
  readonly key: LeaseKey
  /** The id of the fiber that made the hold. */
  readonly holderId: number
  readonly lost: Deferred.Deferred<LeaseError.LeaseLost>
  renewal: { readonly lease: Handle } | undefined = undefined
  closed = false

  constructor(key: LeaseKey, holderId: number, lost: Deferred.Deferred<LeaseError.LeaseLost>) {
    this.key = key
    this.holderId = holderId
    this.lost = lost
  }

  /** Whether the lease is still held: acquired, its scope open, not lost. */
  get isHeld(): boolean {
    return this.renewal !== undefined && !this.closed && !Deferred.isDoneUnsafe(this.lost)
  }
}

/**
 * The holds of one `Lease` service, and which fibers are under each: the fiber that made it, and the fibers forked
 * from it (at any depth) while it is held. A lease is not reentrant: a fiber that waited for a key it is under would
 * wait for itself until its budget ran out, so such an acquire is refused at once.
 *
 * One service holds a key at most once at a time (its store grants one token per key), so its holds are kept by
 * key (`live`), each with the id of the fiber that made it: that fiber is recognised whatever its context became
 * since (a combinator around `hold` such as `Effect.provide` restores the context when it ends). A forked fiber
 * starts with its parent's context, so the hold is also put in the context of the fibers under it (`inherited`); a
 * hold that ended stays in the contexts of fibers forked under it, seen as ended (`isHeld`), so they wait as anyone
 * else does.
 */
export const make = () => {
  const live = new Map<string, Holding>()
  const id = Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0"))
  const inherited = Context.Reference<HashMap.HashMap<string, Holding>>(`leasehold/Lease/holds/${id.join("")}`, {
    defaultValue: () => HashMap.empty()
  })

  /** `ReentrantAcquire` when `fiber` is under this service's hold of `key`. */
  const reentry = (fiber: Fiber.Fiber<unknown, unknown>, key: LeaseKey): LeaseError.LeaseError | undefined => {
    const holding = live.get(key)
    if (holding === undefined || !holding.isHeld) return undefined
    const under =
      holding.holderId === fiber.id || Option.getOrUndefined(HashMap.get(fiber.getRef(inherited), key)) === holding
    return under
      ? LeaseError.make(new LeaseError.ReentrantAcquire({ key, fence: holding.renewal!.lease.fence }))
      : undefined
  }

  /** A hold that has just been acquired. */
  const started = (holding: Holding): void => {
    live.set(holding.key, holding)
  }

  /** A hold whose scope closes. */
  const ended = (holding: Holding): void => {
    holding.closed = true
    if (live.get(holding.key) === holding) live.delete(holding.key)
  }

  /** `context` with `holding` added: for the fiber that runs the work of `withLease`. */
  const under = <R>(context: Context.Context<R>, holding: Holding): Context.Context<R> =>
    Context.add(context, inherited, HashMap.set(Context.get(context, inherited), holding.key, holding))

  /**
   * Puts the fibers that the current fiber forks from now on under `holding` (`hold`, whose caller goes on in its
   * own fiber), and gives `active`.
   */
  const enter = <A>(holding: Holding, active: A): Effect.Effect<A> =>
    Effect.withFiber((fiber) => {
      fiber.setContext(under(fiber.context, holding))
      return Effect.succeed(active)
    })

  return { reentry, started, ended, under, enter }
}
