/**
 * The part of `redlock@5.0.0-beta.2`'s API the bench uses. Its own `dist/index.d.ts` is not reachable through its
 * package `exports`, so TypeScript cannot find it from an ES module; this declaration mirrors it.
 *
 * @since 0.1.0
 */
declare module "redlock" {
  import { EventEmitter } from "node:events"
  import type { Redis } from "ioredis"

  export interface Settings {
    readonly driftFactor: number
    readonly retryCount: number
    readonly retryDelay: number
    readonly retryJitter: number
    readonly automaticExtensionThreshold: number
  }

  export type RedlockAbortSignal = AbortSignal & { error?: Error }

  export class Lock {
    readonly resources: Array<string>
    readonly value: string
    expiration: number
    release(): Promise<unknown>
    extend(duration: number): Promise<Lock>
  }

  export default class Redlock extends EventEmitter {
    constructor(clients: Iterable<Redis>, settings?: Partial<Settings>)
    acquire(resources: Array<string>, duration: number, settings?: Partial<Settings>): Promise<Lock>
    release(lock: Lock, settings?: Partial<Settings>): Promise<unknown>
    using<T>(
      resources: Array<string>,
      duration: number,
      routine: (signal: RedlockAbortSignal) => Promise<T>
    ): Promise<T>
  }
}
