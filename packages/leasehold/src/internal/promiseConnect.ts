/**
 * The layers behind the Promise facade (`leasehold/promise`): `Lease.layer` over the Redis store over a node-redis
 * client of its own (`NodeRedis` from `@effect/platform-node`, loaded only when a Redis is asked for, so the memory
 * store needs neither it nor `redis`), or over the memory store; and what a failed connect rejects with.
 */
import type * as NodeRedisModule from "@effect/platform-node/NodeRedis"
import { Context, Duration, Effect, Layer, type LogLevel, Option, Redacted, References } from "effect"
import * as Redis from "effect/persistence/Redis"
import * as Lease from "../Lease.ts"
import * as LeaseError from "../LeaseError.ts"
import * as LeaseStore from "../LeaseStore.ts"
import * as RedisTransport from "../RedisTransport.ts"

/** The options of a Redis connection, as `connect` takes them (see `RedisConnectOptions` in `promise.ts`). */
export interface RedisPlanOptions {
  readonly url: string
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  readonly prefix?: string | undefined
  readonly commandTimeout?: Duration.Input | undefined
  readonly connectTimeout?: Duration.Input | undefined
  readonly logLevel?: LogLevel.LogLevel | undefined
}

/** What `connect` builds and how it shuts it down. */
export interface Plan {
  readonly layer: Layer.Layer<Lease.Lease, unknown>
  /** How long the layer may take to build before `connect` gives up. */
  readonly connectBoundMillis: number
  /** How long a graceful close may take before the client is destroyed. */
  readonly closeBoundMillis: number
  /** Ends the client's connections at once, rejecting what they still wait for (nothing for memory). */
  readonly forceClose: (context: Context.Context<never>) => void
  /** The rejection of a connect whose layer failed to build with `error`. */
  readonly connectFailed: (error: unknown) => unknown
  /** The rejection of a connect whose layer was not built within `connectBoundMillis`. */
  readonly connectTimedOut: () => unknown
}

/** Room past the command timeout for a graceful close: the releases of interrupted holds, then the client's close. */
const closeGraceMillis = 1_000

const invalidOption = (option: string, problem: string) =>
  LeaseError.make(new LeaseError.InvalidOption({ option, problem }))

/** A positive, finite duration option in milliseconds; rejects with `InvalidOption` otherwise. */
const positiveMillis = (option: string, input: Duration.Input | undefined, fallback: Duration.Duration): number => {
  const duration = input === undefined ? Option.some(fallback) : Duration.fromInput(input)
  const millis = Option.isSome(duration) && Duration.isFinite(duration.value) ? Duration.toMillis(duration.value) : NaN
  if (!(millis > 0)) {
    throw invalidOption(option, `${String(input)} is not a positive, finite duration (e.g. 2000 or "2 seconds")`)
  }
  return millis
}

/** `layer` with `level` as the lowest log level, both while it is built and in the operations run over it. */
const withLogLevel = <A, E>(layer: Layer.Layer<A, E>, level: LogLevel.LogLevel | undefined): Layer.Layer<A, E> =>
  level === undefined
    ? layer
    : (Layer.provideMerge(layer, Layer.succeed(References.MinimumLogLevel, level)) as Layer.Layer<A, E>)

/** The memory store: one process, nothing to connect to. */
export const memoryPlan = (logLevel: LogLevel.LogLevel | undefined): Plan => ({
  layer: withLogLevel(Lease.layer.pipe(Layer.provide(LeaseStore.layerMemory)), logLevel),
  connectBoundMillis: closeGraceMillis,
  closeBoundMillis: closeGraceMillis,
  forceClose: () => {},
  connectFailed: (error) => error,
  connectTimedOut: () => new Error("leasehold: the memory store did not start within 1 second.")
})

/**
 * The Redis store over a node-redis client of its own. Rejects with `InvalidOption` for a URL that is not
 * `redis://` or `rediss://` (the message does not hold the URL, which may hold a password) or a bad timeout.
 */
export const redisPlan = async (options: RedisPlanOptions): Promise<Plan> => {
  if (typeof options.url !== "string" || !URL.canParse(options.url)) {
    throw invalidOption("url", "is not a valid URL (e.g. redis://127.0.0.1:6379)")
  }
  const url = new URL(options.url)
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw invalidOption("url", "is not a redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379)")
  }
  const commandMillis = positiveMillis("commandTimeout", options.commandTimeout, Duration.seconds(2))
  const connectMillis = positiveMillis("connectTimeout", options.connectTimeout, Duration.seconds(5))
  const NodeRedis = await loadNodeRedis()
  const address = `${url.hostname}:${url.port === "" ? "6379" : url.port}`
  const password = Redacted.isRedacted(options.password)
    ? Redacted.value(options.password as Redacted.Redacted<string>)
    : options.password
  const secrets = [password, url.password, decoded(url.password)].filter(
    (s): s is string => s !== undefined && s !== ""
  )
  const unavailable = (detail: string) =>
    LeaseError.make(
      new LeaseError.StoreUnavailable({
        operation: "connect",
        key: address,
        cause: new Error(`${redact(detail, secrets)}; start Redis there or pass the url of one that runs`)
      })
    )
  const client = NodeRedis.layer({
    url: options.url,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(password === undefined ? {} : { password }),
    socket: { connectTimeout: connectMillis }
  })
  // The store's fast path: a transport over the client (as `NodeRedisClient.layer` of `@leasehold/node-redis`).
  const transport = Layer.effect(
    RedisTransport.RedisTransport,
    Effect.flatMap(Effect.service(NodeRedis.NodeRedis), ({ client }) =>
      RedisTransport.fromNodeRedisClient(client, { connectTimeoutMillis: commandMillis })
    )
  )
  const layer = Lease.layer.pipe(
    Layer.provide(LeaseStore.layerRedis({ prefix: options.prefix, commandTimeout: Duration.millis(commandMillis) })),
    Layer.provide(transport),
    Layer.provideMerge(client)
  )
  return {
    layer: withLogLevel(layer, options.logLevel),
    connectBoundMillis: connectMillis,
    closeBoundMillis: commandMillis + closeGraceMillis,
    forceClose: (context) => {
      const nodeRedis = Context.getOption(context as Context.Context<NodeRedisModule.NodeRedis>, NodeRedis.NodeRedis)
      // Not guarded by `isOpen`: a graceful close has already cleared it while it waits for replies.
      if (Option.isSome(nodeRedis)) nodeRedis.value.client.destroy()
    },
    connectFailed: (error) =>
      error instanceof Redis.RedisError
        ? unavailable(`could not connect to Redis at ${address} (${describe(error.cause)})`)
        : error,
    connectTimedOut: () =>
      unavailable(`Redis at ${address} accepted no connection or answered nothing within ${connectMillis} ms`)
  }
}

/** A percent-encoded URL part as text; `undefined` when it is malformed. */
const decoded = (part: string): string | undefined => {
  try {
    return decodeURIComponent(part)
  } catch {
    return undefined
  }
}

/** Loads `@effect/platform-node`'s NodeRedis, with an error that says what to install when it is missing. */
const loadNodeRedis = async (): Promise<typeof NodeRedisModule> => {
  try {
    return await import("@effect/platform-node/NodeRedis")
  } catch (cause) {
    throw new Error(
      "leasehold/promise: connecting to Redis needs the packages @effect/platform-node and redis: npm i @effect/platform-node redis",
      { cause }
    )
  }
}

/** One line for a connection failure: the error codes or messages, without stacks. */
const describe = (cause: unknown): string => {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(describe).join("; ")
  if (cause instanceof Error) {
    const code = (cause as { readonly code?: unknown }).code
    return cause.message !== "" ? cause.message : typeof code === "string" ? code : cause.name
  }
  return String(cause)
}

const redact = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((redacted, secret) => redacted.split(secret).join("<redacted>"), text)
