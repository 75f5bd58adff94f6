import { Deferred, Effect, type Scope } from "effect"

/**
 * Why a sleeping waiter was woken: a release of its key (probe now), or its promotion to the head of the queue
 * (probe now if the waiter before it left without the lease; otherwise wait for that holder, at most `fallback` ms).
 */
interface Wake {
  readonly probe: boolean
  readonly fallbackMillis: number | undefined
}

/** A waiter's place in the queue of one key. */
export interface Ticket<Holder> {
  /** Whether this waiter is first in its key's queue: only the head sends commands. */
  readonly isHead: () => boolean
  /** Waits for a wake-up, or `millis` (Effect's clock); `undefined` when the time ran out first. */
  readonly sleep: (millis: number) => Effect.Effect<Wake | undefined>
  /** Leaves the queue; `acquiredTtlMillis` when this waiter took the lease (the next one then waits for it). */
  readonly leave: (acquiredTtlMillis?: number) => void
  /** The holder the head saw last, shared by the queue (for the `AcquireTimeout` of any waiter). */
  readonly holder: () => Holder | undefined
  readonly sawHolder: (holder: Holder) => void
}

interface TicketState {
  readonly key: string
  wake: Wake | undefined
  signal: Deferred.Deferred<void>
  left: boolean
}

/**
 * The waiters of one process, queued first-come first-served per key. A release notification wakes only the head,
 * so one waiter per process races for each release and the others send nothing.
 */
export interface WaitRoom<Holder> {
  /** Joins the queue of `key` for the life of the scope. */
  readonly join: (key: string) => Effect.Effect<Ticket<Holder>, never, Scope.Scope>
  /** A release of `key` was announced: wake the head of its queue. */
  readonly notify: (key: string) => void
  /** Any release may have gone unheard: wake the head of every queue to try. */
  readonly notifyAll: () => void
  /** Whether anyone in this process waits for `key` (a newcomer then queues behind them instead of trying). */
  readonly hasWaiters: (key: string) => boolean
}

const merge = (pending: Wake | undefined, next: Wake): Wake => ({
  probe: (pending?.probe ?? false) || next.probe,
  fallbackMillis: next.fallbackMillis ?? pending?.fallbackMillis
})

interface Queue<Holder> {
  readonly tickets: Array<TicketState>
  holder: Holder | undefined
}

export const make = <Holder>(): WaitRoom<Holder> => {
  const queues = new Map<string, Queue<Holder>>()

  const wake = (state: TicketState, reason: Wake) => {
    state.wake = merge(state.wake, reason)
    Deferred.doneUnsafe(state.signal, Effect.void)
  }

  const leave = (state: TicketState, acquiredTtlMillis: number | undefined) => {
    if (state.left) return
    state.left = true
    const queue = queues.get(state.key)
    if (queue === undefined) return
    const index = queue.tickets.indexOf(state)
    if (index >= 0) queue.tickets.splice(index, 1)
    if (queue.tickets.length === 0) {
      queues.delete(state.key)
      return
    }
    if (index === 0) {
      const head = queue.tickets[0]!
      wake(head, { probe: acquiredTtlMillis === undefined, fallbackMillis: acquiredTtlMillis })
    }
  }

  const join = (key: string) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const state: TicketState = { key, wake: undefined, signal: Deferred.makeUnsafe<void>(), left: false }
        let queue = queues.get(key)
        if (queue === undefined) {
          queue = { tickets: [], holder: undefined }
          queues.set(key, queue)
        }
        queue.tickets.push(state)
        const shared = queue
        const ticket: Ticket<Holder> = {
          isHead: () => shared.tickets[0] === state,
          holder: () => shared.holder,
          sawHolder: (holder) => {
            shared.holder = holder
          },
          sleep: (millis) =>
            Effect.raceFirst(
              Effect.as(Deferred.await(state.signal), true),
              Effect.as(Effect.sleep(Math.max(0, Math.ceil(millis))), false)
            ).pipe(
              Effect.map((woken) => {
                if (!woken) return undefined
                const reason = state.wake
                state.wake = undefined
                state.signal = Deferred.makeUnsafe<void>()
                return reason
              })
            ),
          leave: (acquiredTtlMillis) => leave(state, acquiredTtlMillis)
        }
        return ticket
      }),
      (ticket) => Effect.sync(() => ticket.leave())
    )

  const notify = (key: string) => {
    const head = queues.get(key)?.tickets[0]
    if (head !== undefined) wake(head, { probe: true, fallbackMillis: undefined })
  }

  const notifyAll = () => {
    for (const queue of queues.values()) {
      const head = queue.tickets[0]
      if (head !== undefined) wake(head, { probe: true, fallbackMillis: undefined })
    }
  }

  return { join, notify, notifyAll, hasWaiters: (key) => queues.has(key) }
}
