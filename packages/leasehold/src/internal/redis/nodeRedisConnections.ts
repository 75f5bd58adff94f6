/**
 * Connections of leasehold's own beside a node-redis client: a release subscriber that says when it lost and
 * regained its subscription, and a standby connection for commands while the client itself is reconnecting. Both
 * are duplicates of the client (same server, same options), reconnected on leasehold's schedule, not the client's.
 */
import { Effect, type Scope } from "effect"
import type { SubscriptionEvent } from "../../RedisTransport.ts"

/** What leasehold uses of a node-redis (6.x) client beyond `sendCommand`: its state, its events, duplicates. */
export interface NodeClient {
  readonly isOpen: boolean
  readonly isReady: boolean
  readonly options?: { readonly socket?: object | undefined } | undefined
  readonly sendCommand: (args: Array<string>, options?: object) => Promise<unknown>
  readonly duplicate: (overrides?: object) => NodeClient
  readonly connect: () => Promise<unknown>
  readonly subscribe: (channel: string, listener: (message: string) => void) => Promise<unknown>
  readonly on: (event: string, listener: (...args: ReadonlyArray<unknown>) => void) => unknown
  readonly off: (event: string, listener: (...args: ReadonlyArray<unknown>) => void) => unknown
  readonly destroy: () => void
}

/** Whether a client has what `NodeClient` needs (checked structurally: leasehold does not depend on `redis`). */
export const isNodeClient = (client: unknown): client is NodeClient => {
  if (typeof client !== "object" || client === null) return false
  const c = client as Record<string, unknown>
  return (
    typeof c.duplicate === "function" &&
    typeof c.sendCommand === "function" &&
    typeof c.subscribe === "function" &&
    typeof c.on === "function" &&
    typeof c.off === "function" &&
    typeof c.destroy === "function" &&
    typeof c.isReady === "boolean"
  )
}

/**
 * The subscriber's reconnect schedule once it has subscribed: at once, then quickly, at most a second apart; it
 * never gives up. Before that, a failed connect fails the subscription (the waiters poll, and a later one retries).
 */
const subscriberReconnect =
  (subscribed: () => boolean) =>
  (retries: number, cause: unknown): number | Error =>
    subscribed() ? Math.min(25 * 2 ** retries, 1_000) : cause instanceof Error ? cause : new Error(String(cause))

/**
 * Subscribes to `channel` on a connection of its own for the life of the scope; succeeds once subscribed. A drop of
 * that connection is reported (`interrupted`), and so is its return (`resumed`, once it has subscribed again:
 * messages published in between were lost); `ended` if it stops for good.
 */
export const subscribe = (
  client: NodeClient,
  channel: string,
  onMessage: (message: string) => void,
  onEvent: (event: SubscriptionEvent) => void
): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    let subscribed = false
    const subscriber = client.duplicate({
      socket: { ...client.options?.socket, reconnectStrategy: subscriberReconnect(() => subscribed) }
    })
    let interrupted = false
    // An error event is followed by a reconnect (reported by `ready`) or by `end`: it is reported, never thrown.
    subscriber.on("error", () => {
      if (subscribed && !interrupted) {
        interrupted = true
        onEvent("interrupted")
      }
    })
    subscriber.on("ready", () => {
      if (!subscribed || !interrupted) return
      interrupted = false
      onEvent("resumed")
    })
    subscriber.on("end", () => {
      if (subscribed) onEvent("ended")
    })
    // Destroyed when the scope closes, which also ends a connect that never completes (a silent link).
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        subscribed = false
        subscriber.destroy()
      })
    )
    yield* Effect.tryPromise(async () => {
      await subscriber.connect()
      await subscriber.subscribe(channel, onMessage)
      subscribed = true
    })
  })

/**
 * A command client that sends over `main` while it is connected, and over a standby connection of leasehold's own
 * while `main` is reconnecting: with node-redis's backoff (up to 2 s between attempts) a server that is back
 * already would otherwise stay unused until the client's next attempt, or its offline queue would hold leasehold's
 * commands until then. The standby is opened when first needed (one attempt per command, no reconnect of its own),
 * and closed once `main` is back and nothing is in flight on it. A closed `main` is used as it is (it fails).
 */
export const withStandby = (main: NodeClient, connectTimeoutMillis: number) => {
  let standby: NodeClient | undefined
  let pending: NodeClient | undefined
  let connecting: Promise<NodeClient> | undefined
  let inFlight = 0
  let closed = false

  const dropIdle = () => {
    if (standby === undefined || inFlight > 0) return
    standby.destroy()
    standby = undefined
  }
  const onMainReady = () => dropIdle()
  main.on("ready", onMainReady)

  /** The standby, connected; a connect that does not complete in time (a silent link) is given up. */
  const open = (): Promise<NodeClient> => {
    if (standby?.isReady) return Promise.resolve(standby)
    if (connecting !== undefined) return connecting
    const fresh = main.duplicate({
      disableOfflineQueue: true,
      socket: { ...main.options?.socket, reconnectStrategy: false }
    })
    pending = fresh
    // Its failures reach the commands that needed it.
    fresh.on("error", () => {})
    const giveUp = setTimeout(() => fresh.destroy(), connectTimeoutMillis)
    if (typeof giveUp === "object" && typeof giveUp.unref === "function") giveUp.unref()
    connecting = fresh.connect().then(
      () => {
        clearTimeout(giveUp)
        connecting = undefined
        pending = undefined
        if (closed) {
          fresh.destroy()
          throw new Error("The lease store is closed")
        }
        standby?.destroy()
        standby = fresh
        return fresh
      },
      (cause) => {
        clearTimeout(giveUp)
        connecting = undefined
        pending = undefined
        fresh.destroy()
        throw cause
      }
    )
    return connecting
  }

  const sendCommand = (args: Array<string>, options?: object): Promise<unknown> => {
    if (main.isReady || !main.isOpen || closed) return main.sendCommand(args, options)
    inFlight++
    return open()
      .then((connection) => connection.sendCommand(args, options))
      .finally(() => {
        inFlight--
        if (main.isReady) dropIdle()
      })
  }

  const close = () => {
    closed = true
    main.off("ready", onMainReady)
    pending?.destroy()
    standby?.destroy()
    standby = undefined
  }

  return { sendCommand, close }
}
