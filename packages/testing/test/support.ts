import { Context, Effect } from "effect"
import * as Redis from "effect/persistence/Redis"
import * as RedisTestServer from "../src/RedisTestServer.ts"

/** A disposable client's `Redis` service (see `RedisTestServer.connectDisposable`). */
export const connect = (url: string) =>
  Effect.map(RedisTestServer.connectDisposable(url), (context) => Context.get(context, Redis.Redis))
