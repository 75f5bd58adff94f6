/**
 * Test kit for leasehold: a real redis-server per test file, deterministic tokens, a recording observer and the
 * in-memory store. The store contract suite is at `@leasehold/testing/LeaseStoreContract` (it needs vitest).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ChildProcesses from "./ChildProcesses.ts"
/** @since 0.1.0 */
export * as LeaseObserver from "./LeaseObserver.ts"
/** @since 0.1.0 */
export * as LeaseStore from "./LeaseStore.ts"
/** @since 0.1.0 */
export * as RedisFaults from "./RedisFaults.ts"
/** @since 0.1.0 */
export * as RedisTestServer from "./RedisTestServer.ts"
/** @since 0.1.0 */
export * as Stall from "./Stall.ts"
/** @since 0.1.0 */
export * as TcpProxy from "./TcpProxy.ts"
/** @since 0.1.0 */
export * as TokenSource from "./TokenSource.ts"
