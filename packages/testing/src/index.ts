/**
 * Test kit for leasehold: a real redis-server per test file, deterministic tokens and a recording observer (the
 * in-memory store is leasehold's own `LeaseStore.layerMemory`). The store contract suite is at
 * `@leasehold/testing/LeaseStoreContract` (it needs vitest).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ChildProcesses from "./ChildProcesses.ts"
/** @since 0.1.0 */
export * as RecordingObserver from "./RecordingObserver.ts"
/** @since 0.1.0 */
export * as RedisFaults from "./RedisFaults.ts"
/** @since 0.1.0 */
export * as RedisTestServer from "./RedisTestServer.ts"
/** @since 0.1.0 */
export * as SequenceTokens from "./SequenceTokens.ts"
/** @since 0.1.0 */
export * as Stall from "./Stall.ts"
/** @since 0.1.0 */
export * as TcpProxy from "./TcpProxy.ts"
