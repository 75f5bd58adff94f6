/**
 * The worker process of `seq`, `par64`, `contend-procs`, `hold-many` and `mem` (forked by `workerProcess.ts`): answers the bench's
 * requests over IPC. It leaves when asked, when the bench disconnects (the bench died), or after 30 minutes.
 *
 * @since 0.1.0
 */
import { bounded, messageOf } from "./clock.ts"
import type { FromWorker, ToWorker } from "./protocol.ts"
import { type Admin, connectAdmin } from "./redis.ts"
import { type Guard, runWorkers } from "./scenarios/contention.ts"
import { measureHoldMany } from "./scenarios/holdMany.ts"
import { measureMem } from "./scenarios/mem.ts"
import { runThroughput } from "./scenarios/throughput.ts"
import { specOf } from "./subjects/index.ts"
import type { Subject } from "./subjects/Subject.ts"

const send = (message: FromWorker) => {
  process.send?.(message)
}

/** The overlap guard of `contend-procs`: a counter key in Redis, shared by every process. */
const redisGuard = (admin: Admin, counterKey: string): Guard => ({
  enter: async () => (await admin.client.incr(counterKey)) > 1,
  leave: async () => {
    await admin.client.decr(counterKey)
  }
})

/** The subject this worker runs, and the admin connection `contend-go` needs (opened on first use). */
let contender: { readonly subject: Subject; readonly url: string; admin: Admin | undefined } | undefined

const teardown = async () => {
  const current = contender
  contender = undefined
  if (current === undefined) return
  await bounded(current.subject.close(), 10_000, "close").catch(() => {})
  await current.admin?.close()
}

const handle = async (message: ToWorker): Promise<FromWorker | undefined> => {
  switch (message.type) {
    case "contend-setup": {
      await teardown()
      const subject = await specOf(message.subject).make({ url: message.url, ttlMillis: message.ttlMillis })
      contender = { subject, url: message.url, admin: undefined }
      return { type: "ready" }
    }
    case "contend-go": {
      const withLock = contender?.subject.withLock
      if (contender === undefined || withLock === undefined) throw new Error("contend-go before contend-setup")
      contender.admin ??= await connectAdmin(contender.url)
      const report = await runWorkers(withLock, redisGuard(contender.admin, message.counterKey), message.options)
      return { type: "contended", report }
    }
    case "throughput-go": {
      const acquireRelease = contender?.subject.acquireRelease
      if (acquireRelease === undefined) throw new Error("throughput-go before contend-setup, or a subject without it")
      const { metrics, lastError } = await runThroughput(acquireRelease, message.options)
      return { type: "throughput", metrics, lastError }
    }
    case "contend-teardown":
      await teardown()
      return { type: "closed" }
    case "hold-many":
      return { type: "measured", metrics: await measureHoldMany(message.options) }
    case "mem":
      return { type: "measured", metrics: await measureMem(message.options) }
    case "exit":
      await teardown()
      process.exit(0)
  }
}

process.on("message", (message: ToWorker) => {
  handle(message).then(
    (answer) => answer && send(answer),
    (error) => send({ type: "failed", error: messageOf(error) })
  )
})
process.on("disconnect", () => process.exit(0))
setTimeout(() => process.exit(3), 30 * 60_000).unref()
send({ type: "hello" })
