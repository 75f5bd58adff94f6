/**
 * Bounded concurrency for the bulk steps (acquiring thousands of leases, many cycles).
 *
 * @since 0.1.0
 */

/**
 * Runs `task(0)` … `task(count - 1)` with at most `concurrency` running at once; rejects with the first error after
 * the running tasks have settled (no new task starts once one has failed).
 *
 * @category utils
 * @since 0.1.0
 */
export const inPool = async (
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>
): Promise<void> => {
  let next = 0
  let failure: { readonly error: unknown } | undefined
  const lane = async () => {
    while (failure === undefined && next < count) {
      const index = next++
      try {
        await task(index)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane))
  if (failure !== undefined) throw failure.error
}

/**
 * Collects garbage twice (a turn of the event loop in between, for finalizers), when the process runs with
 * `--expose-gc`; a no-op otherwise.
 *
 * @category utils
 * @since 0.1.0
 */
export const collectGarbage = async (): Promise<void> => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return
  gc()
  await new Promise((resolve) => setImmediate(resolve))
  gc()
}
