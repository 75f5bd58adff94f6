/**
 * Type-checks every ```ts block of README.md and docs/*.md as a module of its own, with the workspace's compiler
 * settings (tsconfig.base.json), and reports each error at its Markdown file and line. A block must be complete:
 * what it uses but does not show is declared in the block itself (`declare const doWork: Effect.Effect<void>`).
 *
 * The blocks are written to a fresh folder in packages/leasehold/.tmp (kept when a block fails), inside the
 * leasehold package, so that `leasehold` (the package's own name) and the packages next to it (`effect`,
 * `@effect/platform-node`, `@leasehold/testing`, `@effect/vitest`) resolve as they do for a user's project.
 *
 * Run by `npm run check` (scripts/check.sh); `node scripts/check-docs.ts` on its own.
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type CodeBlock, repoRoot, typeScriptBlocks } from "./readme-programs.ts"

/** The module name of a block: its file and line (`docs/fencing.md`, line 17 → `docs_fencing_md_L17.ts`). */
const moduleName = (block: CodeBlock): string => `${block.file.replace(/[^A-Za-z0-9]/g, "_")}_L${block.line}.ts`

const blocks = typeScriptBlocks()
if (blocks.length === 0) throw new Error("check-docs: no ts blocks found in README.md and docs/*.md")

const parent = join(repoRoot, "packages", "leasehold", ".tmp")
mkdirSync(parent, { recursive: true })
const folder = mkdtempSync(join(parent, "docs-check-"))
const byModule = new Map<string, CodeBlock>()
for (const block of blocks) {
  const name = moduleName(block)
  byModule.set(name, block)
  writeFileSync(join(folder, name), block.code)
}
writeFileSync(
  join(folder, "tsconfig.json"),
  JSON.stringify({
    extends: "../../../../tsconfig.base.json",
    // Each block is a module of its own, even one without imports, so that blocks never see each other's names.
    compilerOptions: { moduleDetection: "force" },
    include: ["*.ts"]
  })
)

const localTsc = join(repoRoot, "node_modules", ".bin", "tsc")
const result = spawnSync(existsSync(localTsc) ? localTsc : "tsc", ["--noEmit", "--pretty", "false", "-p", folder], {
  cwd: folder,
  encoding: "utf8"
})
if (result.error !== undefined) throw result.error

/** An error line of tsc (`docs_fencing_md_L17.ts(3,5): error TS2304: …`) at the Markdown line it comes from. */
const located = (line: string): string => {
  const match = /^(?:.*[\\/])?([^\\/()]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line)
  const block = match === null ? undefined : byModule.get(match[1]!)
  if (match === null || block === undefined) return line
  return `${block.file}:${block.line + Number(match[2]) - 1}:${match[3]}: ${match[4]}`
}

const output = `${result.stdout}${result.stderr}`.trim()
if (result.status !== 0) {
  console.error(output.split("\n").map(located).join("\n"))
  console.error(`check-docs: the blocks above do not type-check (written to ${folder})`)
  process.exit(1)
}
rmSync(folder, { recursive: true, force: true })
const files = new Set(blocks.map((block) => block.file))
console.log(`check-docs: ${blocks.length} ts blocks in ${files.size} files type-check`)
