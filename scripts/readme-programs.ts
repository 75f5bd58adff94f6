/**
 * The code blocks of the docs, as the checks that keep the docs honest need them: every ```ts block of README.md
 * and docs/*.md (type-checked by scripts/check-docs.ts), and the README's programs (run against a real Redis by
 * packages/leasehold/test/Readme.test.ts, and by whatever else wants to run them, such as a consumer project built
 * from the packed tarballs).
 *
 * A block is a *program* when it declares nothing it does not define: it has no `declare` line, so it runs as it
 * is. A block with `declare const doWork: …` lines is a *fragment*: complete for the type checker, not runnable.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

/** The workspace root (this file is in its `scripts/`). */
export const repoRoot: string = join(dirname(fileURLToPath(import.meta.url)), "..")

/** One fenced code block of a Markdown file. */
export interface CodeBlock {
  /** The Markdown file, relative to the workspace root (`README.md`, `docs/fencing.md`). */
  readonly file: string
  /** The 1-based line, in that file, of the block's first line of code (the line after the opening fence). */
  readonly line: number
  /** The fence's info string (`ts`, `sh`, …), empty when there is none. */
  readonly lang: string
  /** The nearest heading above the block, without its `#`s (the file's title for a block before any section). */
  readonly heading: string
  /** The code, with the fence's own indentation removed from every line (blocks nested in a list item). */
  readonly code: string
}

/** A README block that runs as it is. */
export interface Program extends CodeBlock {
  /** The heading, as a file name: `the-shortest-effect-program`. */
  readonly name: string
}

/** The URL the README's programs connect to; a runner swaps it for its own server's (`withRedisUrl`). */
export const programRedisUrl = "redis://127.0.0.1:6379"

const fence = /^( *)(`{3,}|~{3,})\s*([^\s`]*)/

/** Whether `line` closes a block opened by `marker`: the same character, at least as many, nothing else. */
const closes = (line: string, marker: string): boolean => {
  const text = line.trim()
  return text.length >= marker.length && text === marker[0]!.repeat(text.length)
}

/** Every fenced code block of `file` (a path relative to the workspace root), in order. */
export const codeBlocks = (file: string): ReadonlyArray<CodeBlock> => {
  const lines = readFileSync(join(repoRoot, file), "utf8").split("\n")
  const blocks: Array<CodeBlock> = []
  let heading = ""
  for (let index = 0; index < lines.length; index++) {
    const text = lines[index]!
    const title = /^#{1,6}\s+(.*)$/.exec(text)
    if (title !== null) heading = title[1]!.trim()
    const open = fence.exec(text)
    if (open === null) continue
    const [, indent, marker, lang] = open as unknown as [string, string, string, string]
    const body: Array<string> = []
    let end = index + 1
    for (; end < lines.length; end++) {
      const line = lines[end]!
      if (closes(line, marker)) break
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart())
    }
    if (end === lines.length) throw new Error(`${file}:${index + 1}: a code block that is never closed`)
    blocks.push({ file, line: index + 2, lang, heading, code: `${body.join("\n")}\n` })
    index = end
  }
  return blocks
}

/** README.md and every docs/*.md, relative to the workspace root. */
export const docFiles = (): ReadonlyArray<string> => [
  "README.md",
  ...readdirSync(join(repoRoot, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => relative(repoRoot, join(repoRoot, "docs", name)))
]

/** Whether a block is TypeScript (` ```ts ` or ` ```typescript `). */
export const isTypeScript = (block: CodeBlock): boolean => block.lang === "ts" || block.lang === "typescript"

/** Every TypeScript block of the docs (`docFiles`), in order. */
export const typeScriptBlocks = (): ReadonlyArray<CodeBlock> => docFiles().flatMap(codeBlocks).filter(isTypeScript)

/** Whether a block runs as it is: it declares nothing (no `declare` line standing in for code it does not show). */
export const isProgram = (block: CodeBlock): boolean => !/^\s*declare\s/m.test(block.code)

const slug = (heading: string): string =>
  heading
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")

/** The README's programs: its TypeScript blocks that run as they are, named by their headings. */
export const readmePrograms = (): ReadonlyArray<Program> =>
  codeBlocks("README.md")
    .filter((block) => isTypeScript(block) && isProgram(block))
    .map((block) => ({ ...block, name: slug(block.heading) }))

/** A program's code with `programRedisUrl` replaced by `url`; fails if the program does not connect there. */
export const withRedisUrl = (program: CodeBlock, url: string): string => {
  if (!program.code.includes(programRedisUrl)) {
    throw new Error(`${program.file}:${program.line}: the program does not connect to ${programRedisUrl}`)
  }
  return program.code.replaceAll(programRedisUrl, url)
}
