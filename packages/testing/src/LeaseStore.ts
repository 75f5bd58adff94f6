/**
 * The in-memory lease store, re-exported for tests: the same contract as Redis in one process, with time read from
 * Effect's `Clock` so `TestClock` moves expiry and renewals.
 *
 * @since 0.1.0
 */
import { LeaseStore } from "leasehold"

/**
 * An in-memory `LeaseStore` (see `LeaseStore.makeMemory` in `leasehold`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory = LeaseStore.layerMemory
