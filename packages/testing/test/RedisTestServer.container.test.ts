// The container path, for real: it needs a container runtime and an image with redis-server (no registry is
// reachable here), so it is not part of `npm test` but of `npm run test:container`, which sets both up
// (scripts/docker-redis.sh) and runs this file alone. Without a runtime, every test here fails: none is skipped.
import * as net from "node:net"
import { assert, describe, it, layer } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseStore } from "leasehold"
import { getContainerRuntimeClient } from "testcontainers"
import * as RedisTestServer from "../src/RedisTestServer.ts"

const image = process.env.LEASEHOLD_REDIS_IMAGE || "redis:7"

/** What the container runtime says about `id`, or `undefined` once it knows no such container. */
const inspect = (id: string) =>
  Effect.promise(async () => {
    const client = await getContainerRuntimeClient()
    try {
      return await client.container.inspect(client.container.getById(id))
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined
      throw error
    }
  })

/** Ids of the containers (running or not) created from `image`. */
const containersOf = (image: string) =>
  Effect.promise(async () => {
    const client = await getContainerRuntimeClient()
    const all = await client.container.dockerode.listContainers({ all: true })
    return all.filter((info) => info.Image === image).map((info) => info.Id)
  })

/** How a TCP connection to 127.0.0.1:`port` ends: "connected" or the error code. */
const dial = (port: number) =>
  Effect.callback<string>((resume) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed("connected"))
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? error.message)))
    return Effect.sync(() => socket.destroy())
  })

const serverOf = (context: Context.Context<RedisTestServer.RedisTestServer>) =>
  Context.get(context, RedisTestServer.RedisTestServer)

const ContainerLease = Lease.layer.pipe(
  Layer.provideMerge(LeaseStore.layerRedis({ prefix: "lease:" })),
  Layer.provideMerge(RedisTestServer.layerContainer())
)

layer(ContainerLease, { excludeTestServices: true, timeout: "90 seconds" })("RedisTestServer.layerContainer", (it) => {
  it.effect("runs redis-server in a container of the image, on the host network and a port of 127.0.0.1", () =>
    Effect.gen(function* () {
      const server = yield* RedisTestServer.RedisTestServer
      assert.strictEqual(server.kind, "container")
      assert.isUndefined(server.pid)
      assert.strictEqual(server.url, `redis://127.0.0.1:${server.port}`)
      assert.isString(server.containerId)
      const info = yield* inspect(server.containerId!)
      assert.isDefined(info)
      assert.strictEqual(info!.Config.Image, image)
      assert.isTrue(info!.State.Running)
      assert.strictEqual(info!.HostConfig.NetworkMode, "host")
      assert.deepStrictEqual(Object.keys(info!.NetworkSettings.Networks), ["host"])
      const redis = yield* Redis.Redis
      const serverInfo = yield* redis.send<string>("INFO", "server")
      assert.include(serverInfo, `tcp_port:${server.port}`)
    })
  )

  it.effect("round-trips SET and GET", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      assert.strictEqual(yield* redis.send<string>("SET", "container:key", "value-1"), "OK")
      assert.strictEqual(yield* redis.send<string | null>("GET", "container:key"), "value-1")
      assert.isNull(yield* redis.send<string | null>("GET", "container:missing"))
    })
  )

  it.effect("holds a lease through the leasehold Redis store, and releases it", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const keys = LeaseStore.redisKeys("lease:", "container:job")
      const held = yield* Lease.withLease("container:job", "5 seconds", (lease) =>
        Effect.gen(function* () {
          const token = yield* redis.send<string | null>("HGET", keys.lease, "token")
          const ttl = yield* redis.send<number>("PTTL", keys.lease)
          return { fence: lease.fence, token, ttl }
        })
      )
      assert.isString(held.token)
      assert.isAbove(held.ttl, 0)
      assert.isAtMost(held.ttl, 5_000)
      assert.strictEqual(String(held.fence), yield* redis.send<string>("GET", keys.fence))
      assert.strictEqual(yield* redis.send<number>("EXISTS", keys.lease), 0)
    })
  )
})

describe("RedisTestServer.layerContainer scope", () => {
  it.live(
    "stops and removes the container when the layer closes",
    () =>
      Effect.gen(function* () {
        const server = yield* Effect.scoped(
          Effect.gen(function* () {
            const server = serverOf(yield* Layer.build(RedisTestServer.layerContainer({ image })))
            assert.isTrue((yield* inspect(server.containerId!))?.State.Running)
            assert.strictEqual(yield* dial(server.port), "connected")
            return server
          })
        )
        assert.isUndefined(yield* inspect(server.containerId!))
        assert.notInclude(yield* containersOf(image), server.containerId)
        assert.strictEqual(yield* dial(server.port), "ECONNREFUSED")
      }),
    60_000
  )

  it.live(
    "stops a container whose start was interrupted, once the scope closes",
    () =>
      Effect.gen(function* () {
        const created = yield* Effect.scoped(
          Effect.gen(function* () {
            const building = yield* Effect.forkChild(Layer.build(RedisTestServer.layerContainer({ image })))
            // Created but not yet ready: testcontainers is still waiting for the ready line.
            const created = yield* containersOf(image).pipe(
              Effect.repeat({ until: (ids) => ids.length > 0, schedule: Schedule.spaced("5 millis"), times: 2_000 })
            )
            yield* Fiber.interrupt(building)
            assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(building)))
            return created
          })
        )
        assert.lengthOf(created, 1)
        assert.isUndefined(yield* inspect(created[0]!))
        assert.deepStrictEqual(yield* containersOf(image), [])
      }),
    60_000
  )

  it.live(
    "fails with a RedisTestServerError that names an image it cannot run, and leaves no container",
    () =>
      Effect.gen(function* () {
        const absent = "leasehold/absent-image:never"
        const exit = yield* Effect.scoped(Layer.build(RedisTestServer.layerContainer({ image: absent }))).pipe(
          Effect.exit
        )
        assert.isTrue(Exit.isFailure(exit))
        const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)
        assert.instanceOf(error, RedisTestServer.RedisTestServerError)
        const { message } = error as RedisTestServer.RedisTestServerError
        assert.include(message, `a ${absent} container`)
        assert.include(message, "LEASEHOLD_REDIS_IMAGE")
        assert.deepStrictEqual(yield* containersOf(absent), [])
      }),
    60_000
  )

  it.live("rejects an empty image name before it asks the container runtime", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.scoped(Layer.build(RedisTestServer.layerContainer({ image: " " }))).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)
      assert.instanceOf(error, RedisTestServer.RedisTestServerError)
      assert.include((error as RedisTestServer.RedisTestServerError).message, "image is empty")
    })
  )
})
