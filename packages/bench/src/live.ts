/**
 * The subjects connected in the bench process, and progress lines on stderr (stdout carries the report).
 *
 * @since 0.1.0
 */
import { bounded, messageOf } from "./clock.ts"
import type { Spec, Subject, SubjectOptions } from "./subjects/Subject.ts"

/**
 * A subject connected for the in-process scenarios, or the error that kept it from connecting.
 *
 * @category models
 * @since 0.1.0
 */
export interface Live {
  readonly spec: Spec
  readonly subject: Subject | undefined
  readonly error: string | undefined
}

/**
 * Connects every subject (each within 15 s); one that fails to connect is kept with its error.
 *
 * @category constructors
 * @since 0.1.0
 */
export const connectAll = (specs: ReadonlyArray<Spec>, options: SubjectOptions): Promise<ReadonlyArray<Live>> =>
  Promise.all(
    specs.map((spec) =>
      bounded(spec.make(options), 15_000, `connecting ${spec.name}`).then(
        (subject): Live => ({ spec, subject, error: undefined }),
        (error): Live => ({ spec, subject: undefined, error: messageOf(error) })
      )
    )
  )

/**
 * Closes every connected subject (each within 10 s; errors are ignored).
 *
 * @category constructors
 * @since 0.1.0
 */
export const closeAll = async (live: ReadonlyArray<Live>): Promise<void> => {
  const closing = live.flatMap((l) => (l.subject === undefined ? [] : [l.subject.close()]))
  await Promise.all(closing.map((close) => bounded(close, 10_000, "close").catch(() => {})))
}

/**
 * Writes a progress line to stderr.
 *
 * @category utils
 * @since 0.1.0
 */
export const progress = (line: string): void => {
  process.stderr.write(`  ${line}\n`)
}
