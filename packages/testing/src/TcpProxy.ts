/**
 * A loopback TCP proxy for chaos tests: it sits between a client and a server (Redis) and, switchable at run time,
 * delays the bytes, holds them back (a partition), discards the replies, or cuts every connection.
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { TcpProxy } from "@leasehold/testing"
 *
 * const program = Effect.gen(function* () {
 *   const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: 6379 })
 *   const client = yield* Layer.build(NodeRedis.layer({ url: proxy.url, disableOfflineQueue: true }))
 *   yield* proxy.blackhole // commands wait; nothing is answered
 *   yield* proxy.heal // the held bytes flow again, in order
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import { Context, Duration, Effect, Layer, Schema, type Scope } from "effect"

/**
 * The proxy and its switches. Each switch applies at once to the open connections and to new ones.
 * - `url` (`redis://127.0.0.1:<port>`), `host`, `port`: where clients connect instead of the server;
 * - `connections`: the client connections open now;
 * - `setLatency`: delays every chunk by `toServer` (client to server) and `toClient` (server to client); the order
 *   of the bytes is kept;
 * - `blackhole`: a partition. Connections stay open and bytes are accepted, but nothing is delivered either way,
 *   closes included, until `heal`: then the held bytes flow in order, as TCP would retransmit them once a partition
 *   ends. Use `cut` to drop them instead;
 * - `dropReplies`: bytes from the server are discarded (the requests still reach it);
 * - `refuse`: new connections are closed as soon as they are accepted, as by a server that is down (open ones stay:
 *   `cut` them too for an outage);
 * - `cut`: destroys every open connection now, with whatever it held; the switches stay as they are;
 * - `heal`: back to normal: no latency, the held bytes delivered, connections accepted. Connections that lost replies to `dropReplies` are
 *   destroyed, since their client waits for answers that will never come.
 *
 * @category services
 * @since 0.1.0
 */
export class TcpProxy extends Context.Service<
  TcpProxy,
  {
    readonly url: string
    readonly host: string
    readonly port: number
    readonly connections: Effect.Effect<number>
    readonly setLatency: (latency: Latency) => Effect.Effect<void>
    readonly blackhole: Effect.Effect<void>
    readonly dropReplies: Effect.Effect<void>
    readonly refuse: Effect.Effect<void>
    readonly cut: Effect.Effect<void>
    readonly heal: Effect.Effect<void>
  }
>()("@leasehold/testing/TcpProxy") {}

/**
 * Per-direction delays; a direction left out is not delayed.
 *
 * @category models
 * @since 0.1.0
 */
export interface Latency {
  readonly toServer?: Duration.Input | undefined
  readonly toClient?: Duration.Input | undefined
}

/**
 * Where the proxy forwards to.
 *
 * @category models
 * @since 0.1.0
 */
export interface Target {
  readonly host: string
  readonly port: number
}

/**
 * The proxy could not listen on 127.0.0.1.
 *
 * @category errors
 * @since 0.1.0
 */
export class TcpProxyError extends Schema.TaggedError<TcpProxyError>()("TcpProxyError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

interface Switches {
  toServerMillis: number
  toClientMillis: number
  blackholed: boolean
  droppingReplies: boolean
  refusing: boolean
}

/** A chunk to deliver, or the end of the stream (`null`: close the other side). */
interface Item {
  readonly due: number
  readonly chunk: Buffer | null
}

/**
 * One direction of one connection: a FIFO of chunks, each delivered once its delay has passed and the proxy is not
 * blackholed. Delivery times never decrease, so lowering the latency cannot reorder bytes.
 */
const makePipe = (switches: Switches, delayOf: (switches: Switches) => number, to: net.Socket) => {
  const queue: Array<Item> = []
  let lastDue = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const pump = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (switches.blackholed) return
    const now = performance.now()
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!
      if (to.destroyed) continue
      if (chunk === null) to.end()
      else to.write(chunk)
    }
    // Node's timers may fire a little early against `performance.now()`: the pump re-arms until the due time.
    if (queue.length > 0) timer = setTimeout(pump, Math.max(1, Math.ceil(queue[0]!.due - now)))
  }
  return {
    push: (chunk: Buffer | null): void => {
      lastDue = Math.max(lastDue, performance.now() + delayOf(switches))
      queue.push({ due: lastDue, chunk })
      pump()
    },
    pump,
    stop: (): void => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      queue.length = 0
    }
  }
}

interface Connection {
  readonly client: net.Socket
  readonly upstream: net.Socket
  readonly toServer: ReturnType<typeof makePipe>
  readonly toClient: ReturnType<typeof makePipe>
  /** Replies were discarded: the client's protocol stream is broken. */
  droppedReplies: boolean
}

const destroy = (connection: Connection): void => {
  connection.toServer.stop()
  connection.toClient.stop()
  connection.client.destroy()
  connection.upstream.destroy()
}

/**
 * Starts a proxy on a free port of 127.0.0.1 that forwards every connection to `target`. When the scope closes, it
 * stops listening and destroys every connection.
 *
 * **Details**
 *
 * Each client connection opens its own connection to the target. A close on either side is forwarded to the other
 * (after the delay, and held like bytes while blackholed); an upstream that cannot be reached closes the client's
 * connection. There is no flow control: the proxy is for tests with modest traffic.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (target: Target): Effect.Effect<TcpProxy["Service"], TcpProxyError, Scope.Scope> =>
  Effect.gen(function* () {
    const switches: Switches = {
      toServerMillis: 0,
      toClientMillis: 0,
      blackholed: false,
      droppingReplies: false,
      refusing: false
    }
    const open = new Set<Connection>()

    const onClient = (client: net.Socket): void => {
      if (switches.refusing) {
        client.on("error", () => {})
        client.destroy()
        return
      }
      const upstream = net.connect({ host: target.host, port: target.port })
      client.setNoDelay(true)
      upstream.setNoDelay(true)
      const connection: Connection = {
        client,
        upstream,
        toServer: makePipe(switches, (s) => s.toServerMillis, upstream),
        toClient: makePipe(switches, (s) => s.toClientMillis, client),
        droppedReplies: false
      }
      open.add(connection)
      client.on("data", (chunk: Buffer) => connection.toServer.push(chunk))
      upstream.on("data", (chunk: Buffer) => {
        if (switches.droppingReplies) connection.droppedReplies = true
        else connection.toClient.push(chunk)
      })
      // An `error` is always followed by `close`; the listeners keep errors from crashing the process.
      client.on("error", () => {})
      upstream.on("error", () => {})
      client.on("close", () => {
        connection.toServer.push(null)
        if (upstream.destroyed) open.delete(connection)
      })
      upstream.on("close", () => {
        connection.toClient.push(null)
        if (client.destroyed) open.delete(connection)
      })
    }

    const server = net.createServer(onClient)
    server.on("error", () => {})
    const port = yield* Effect.acquireRelease(
      Effect.callback<number, TcpProxyError>((resume) => {
        const onError = (cause: Error) =>
          resume(Effect.fail(new TcpProxyError({ message: "The proxy could not listen on 127.0.0.1", cause })))
        server.once("error", onError)
        server.listen(0, "127.0.0.1", () => {
          server.off("error", onError)
          const address = server.address()
          resume(
            typeof address === "object" && address !== null
              ? Effect.succeed(address.port)
              : Effect.fail(new TcpProxyError({ message: "The proxy could not read its own port" }))
          )
        })
      }),
      () =>
        Effect.callback<void>((resume) => {
          for (const connection of open) destroy(connection)
          open.clear()
          server.close(() => resume(Effect.void))
        })
    )

    const forEach = (f: (connection: Connection) => void) =>
      Effect.sync(() => {
        for (const connection of open) f(connection)
      })
    const millis = (input: Duration.Input | undefined) =>
      input === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(input))

    return TcpProxy.of({
      url: `redis://127.0.0.1:${port}`,
      host: "127.0.0.1",
      port,
      connections: Effect.sync(() => [...open].filter((connection) => !connection.client.destroyed).length),
      setLatency: (latency) =>
        Effect.sync(() => {
          switches.toServerMillis = millis(latency.toServer)
          switches.toClientMillis = millis(latency.toClient)
        }),
      blackhole: Effect.sync(() => {
        switches.blackholed = true
      }),
      dropReplies: Effect.sync(() => {
        switches.droppingReplies = true
      }),
      refuse: Effect.sync(() => {
        switches.refusing = true
      }),
      cut: forEach((connection) => {
        destroy(connection)
        open.delete(connection)
      }),
      heal: Effect.sync(() => {
        switches.toServerMillis = 0
        switches.toClientMillis = 0
        switches.blackholed = false
        switches.droppingReplies = false
        switches.refusing = false
      }).pipe(
        Effect.andThen(
          forEach((connection) => {
            if (connection.droppedReplies) {
              destroy(connection)
              open.delete(connection)
            } else {
              connection.toServer.pump()
              connection.toClient.pump()
            }
          })
        )
      )
    })
  })

/**
 * Provides {@link TcpProxy} in front of `target` for the life of the layer (see {@link make}).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (target: Target): Layer.Layer<TcpProxy, TcpProxyError> => Layer.effect(TcpProxy, make(target))
