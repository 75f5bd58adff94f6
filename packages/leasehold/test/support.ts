import { RecordingObserver, SequenceTokens } from "@leasehold/testing"
import * as LeaseStoreContract from "@leasehold/testing/LeaseStoreContract"
import { Effect, Exit, Layer, Option } from "effect"
import { Lease, LeaseError, LeaseStore } from "leasehold"

/** One store operation as the Lease service issued it. */
export interface StoreCall {
  readonly op: "acquire" | "renew" | "renewMany" | "release" | "isHeld" | "inspect"
  readonly key: string
}

/** Replaces some operations of the real memory store (which it receives) with faulty ones. */
export type Faults = (store: LeaseStore.LeaseStore) => Partial<Omit<LeaseStore.LeaseStore, "id">>

/**
 * A Lease service over a fresh memory store (on Effect's clock, so TestClock drives it), with deterministic tokens
 * (`test-token-000001`, …), a recording observer, the store itself in context, and a log of every store call.
 */
export const makeTestLease = (faults: Faults = () => ({})) => {
  const calls: Array<StoreCall> = []
  const store = Layer.effect(
    LeaseStore.LeaseStore,
    Effect.map(LeaseStore.makeMemory, (memory) => {
      const store = { ...memory, ...faults(memory) }
      const logged = <F extends (key: any, ...rest: Array<any>) => Effect.Effect<any, any>>(
        op: StoreCall["op"],
        f: F
      ): F =>
        ((key: string, ...rest: Array<any>) =>
          Effect.suspend(() => {
            calls.push({ op, key })
            return f(key, ...rest)
          })) as F
      return LeaseStore.LeaseStore.of({
        id: memory.id,
        maxOperationMillis: store.maxOperationMillis,
        acquire: logged("acquire", store.acquire),
        renew: logged("renew", store.renew),
        // Batches go through `renew`, so a fault on `renew` applies to them, and each lease counts as one call.
        renewMany: (leases) =>
          Effect.suspend(() => {
            calls.push({ op: "renewMany", key: leases.map((lease) => lease.key).join(",") })
            return Effect.forEach(
              leases,
              (lease) => logged("renew", store.renew)(lease.key, lease.token, lease.ttlMillis),
              { concurrency: "unbounded" }
            )
          }),
        release: logged("release", store.release),
        isHeld: logged("isHeld", store.isHeld),
        inspect: logged("inspect", store.inspect),
        watchReleases: store.watchReleases
      })
    })
  )
  // Layer.fresh: Lease.layer is one object, and a memo map would otherwise share one build between test layers.
  const layer = Layer.fresh(Lease.layer).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(RecordingObserver.layer),
    Layer.provide(SequenceTokens.layer())
  )
  const count = (op: StoreCall["op"]) => calls.filter((call) => call.op === op).length
  return { layer, calls, count }
}

/** The lease of an `Acquired` attempt; throws on `Held` (the store contract suite's helper). */
export const acquired = LeaseStoreContract.helpers.acquired

/** The reason of a `LeaseError`; throws on anything else. */
export const reasonOf = (error: unknown) => {
  if (!LeaseError.isLeaseError(error)) throw new Error(`expected a LeaseError, got ${String(error)}`)
  return error.reason
}

/** The error of a failed exit; throws on success. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  const failure = Exit.findErrorOption(exit)
  if (Option.isNone(failure)) throw new Error(`expected a failure, got ${String(exit)}`)
  return failure.value
}
