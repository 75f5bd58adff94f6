/**
 * leasehold: distributed lease locks for Effect on Redis.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Fence from "./Fence.ts"
/** @since 0.1.0 */
export * as Lease from "./Lease.ts"
/** @since 0.1.0 */
export * as LeaseError from "./LeaseError.ts"
/** @since 0.1.0 */
export * as LeaseKey from "./LeaseKey.ts"
/** @since 0.1.0 */
export * as LeaseObserver from "./LeaseObserver.ts"
/** @since 0.1.0 */
export * as LeaseOwner from "./LeaseOwner.ts"
/** @since 0.1.0 */
export * as LeaseStore from "./LeaseStore.ts"
/** @since 0.1.0 */
export * as LeaseToken from "./LeaseToken.ts"
/** @since 0.2.0 */
export * as RedisTransport from "./RedisTransport.ts"
/** @since 0.1.0 */
export * as TokenSource from "./TokenSource.ts"
