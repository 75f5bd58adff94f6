import { Context, Deferred, Effect, type Fiber, HashMap, Option, Scope } from "effect"
import * as LeaseError from "../LeaseError.ts"
import type { LeaseKey } from "../LeaseKey.ts"
import type { Handle } from "./handle.ts"

/**
 * One hold of an auto-renewed lease (`Lease.hold`, `Lease.withLease`), as its release and the fibers under it see
 * it: the renewal (its `lease` follows the renews; set once acquired), the loss signal, and whether its scope has
 * closed.
 */
export class Holding {
  readonly key: LeaseKey
  readonly lost: Deferred.Deferred<LeaseError.LeaseLost>
  renewal: { readonly lease: Handle } | undefined = undefined
  closed = false

  constructor(key: LeaseKey, lost: Deferred.Deferred<LeaseError.LeaseLost>) {
    this.key = key
    this.lost = lost
  }

  /** Whether the lease is still held: acquired, its scope open, not lost. */
  get isHeld(): boolean {
    return this.renewal !== undefined && !this.closed && !Deferred.isDoneUnsafe(this.lost)
  }
}

/**
 * The holds of one `Lease` service that a fiber is under: its own, and those of the fibers it was forked from at the
 * time of the fork. A lease is not reentrant: a fiber that waited for a key it is under would wait for itself until
 * its budget ran out, so such an acquire is refused at once.
 *
 * A forked fiber starts with its parent's context, so a hold is put in the context of the fibers under it. A fiber's
 * own holds are also kept beside it (`own`): a combinator around `hold` that restores the context when it ends
 * (`Effect.provide`, `Scope.provide`, `Effect.withSpan`) takes the hold out of the fiber's context, not out of
 * `own`. A hold that ended stays in the contexts of fibers forked under it, seen as ended (`isHeld`), so they wait
 * as anyone else does.
 */
export const make = () => {
  const id = Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0"))
  const inherited = Context.Reference<HashMap.HashMap<string, Holding>>(`leasehold/Lease/holds/${id.join("")}`, {
    defaultValue: () => HashMap.empty()
  })
  const own = new WeakMap<Fiber.Fiber<unknown, unknown>, Map<string, Holding>>()

  /** `ReentrantAcquire` when `fiber` is under a hold of `key` by this service. */
  const reentry = (fiber: Fiber.Fiber<unknown, unknown>, key: LeaseKey): LeaseError.LeaseError | undefined => {
    const ownHold = own.get(fiber)?.get(key)
    const holding = ownHold?.isHeld ? ownHold : Option.getOrUndefined(HashMap.get(fiber.getRef(inherited), key))
    if (holding === undefined || !holding.isHeld) return undefined
    return LeaseError.make(new LeaseError.ReentrantAcquire({ key, fence: holding.renewal!.lease.fence }))
  }

  /** `context` with `holding` added: for the fiber that runs the work of `withLease`. */
  const under = <R>(context: Context.Context<R>, holding: Holding): Context.Context<R> =>
    Context.add(context, inherited, HashMap.set(Context.get(context, inherited), holding.key, holding))

  /**
   * Puts the current fiber, and the fibers it forks from now on, under `holding` until the current scope closes
   * (`hold`, whose caller goes on in its own fiber), and gives `active`. Only this hold is taken away then, so holds
   * closed in another order than they were made keep theirs.
   */
  const enter = <A>(holding: Holding, active: A): Effect.Effect<A, never, Scope.Scope> =>
    Effect.withFiber((fiber) => {
      const holds = own.get(fiber) ?? new Map<string, Holding>()
      own.set(fiber, holds)
      holds.set(holding.key, holding)
      fiber.setContext(under(fiber.context, holding))
      // A weak reference: a scope that outlives the fiber (a hold kept after its acquirer ended) does not keep it.
      const fiberRef = new WeakRef(fiber)
      const leave = Effect.sync(() => {
        if (holds.get(holding.key) === holding) holds.delete(holding.key)
        const fiber = fiberRef.deref()
        if (fiber === undefined) return
        const context = fiber.getRef(inherited)
        if (Option.getOrUndefined(HashMap.get(context, holding.key)) === holding) {
          fiber.setContext(Context.add(fiber.context, inherited, HashMap.remove(context, holding.key)))
        }
      })
      return Effect.as(
        Scope.addFinalizer(Context.getUnsafe(fiber.context as Context.Context<Scope.Scope>, Scope.Scope), leave),
        active
      )
    })

  return { reentry, under, enter }
}
