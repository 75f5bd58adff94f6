/**
 * A project outside the workspace that uses the published packages as a user would: the tarballs `pnpm pack`
 * makes (its `prepack` builds `dist/`), installed with npm beside `effect`, `@effect/platform-node`, `redis`,
 * `typescript` and `@types/node` from the registry, with the files of `fixtures/` copied in.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import { readmePrograms } from "../../../scripts/readme-programs.ts"

const execFileAsync = promisify(execFile)

/** The workspace root. */
export const workspaceRoot = path.resolve(import.meta.dirname, "../../..")

/** The consumer's programs (run with each Node), type-only files and tsconfigs, copied into the project. */
export const fixturesDir = path.resolve(import.meta.dirname, "../fixtures")

/** The package directories that are published, in the order they are packed. */
export const publishedPackages: ReadonlyArray<string> = ["packages/leasehold", "packages/testing"]

/** A command that failed, with what it printed. */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  message: Schema.String
}) {}

/** The environment for child commands: npm's and pnpm's script variables point into the workspace, so drop them. */
const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) && name !== "INIT_CWD" && name !== "NODE_OPTIONS") env[name] = value
  }
  return { ...env, ...extra }
}

/** Runs `file args` in `cwd` within `timeoutMillis`; fails with everything it printed. */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly timeoutMillis: number; readonly env?: Record<string, string> }
): Effect.Effect<string, CommandFailed> =>
  Effect.tryPromise({
    try: async (signal) => {
      const { stdout } = await execFileAsync(file, args, {
        cwd: options.cwd,
        env: childEnv(options.env ?? {}),
        timeout: options.timeoutMillis,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        signal
      })
      return stdout
    },
    catch: (error) => {
      const failed = error as { message?: string; stdout?: string; stderr?: string }
      return new CommandFailed({
        message: [
          `\`${[file, ...args].join(" ")}\` in ${options.cwd} failed: ${failed.message ?? String(error)}`,
          failed.stdout ?? "",
          failed.stderr ?? ""
        ].join("\n")
      })
    }
  })

/** A fresh directory under the OS's temp directory, removed with the scope. */
const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** A packed package: its manifest as published and every path in its tarball (without the `package/` root). */
export interface Tarball {
  readonly directory: string
  readonly file: string
  readonly manifest: PackedManifest
  readonly entries: ReadonlyArray<string>
}

/** The fields of a published package.json that the tests read. */
export interface PackedManifest {
  readonly name: string
  readonly version: string
  readonly engines?: Record<string, string>
  readonly exports: Record<string, string | null>
  readonly files?: ReadonlyArray<string>
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>
  readonly scripts?: Record<string, string>
  readonly publishConfig?: unknown
}

const pack = (directory: string, destination: string): Effect.Effect<Tarball, CommandFailed> =>
  Effect.gen(function* () {
    const out = path.join(destination, path.basename(directory))
    fs.mkdirSync(out)
    yield* run("pnpm", ["pack", "--pack-destination", out], {
      cwd: path.join(workspaceRoot, directory),
      timeoutMillis: 120_000
    })
    const [name, ...others] = fs.readdirSync(out).filter((entry) => entry.endsWith(".tgz"))
    if (name === undefined || others.length > 0)
      return yield* new CommandFailed({ message: `pnpm pack in ${directory} made ${others.length + 1} tarballs` })
    const file = path.join(out, name)
    const listing = yield* run("tar", ["-tzf", file], { cwd: out, timeoutMillis: 30_000 })
    const manifest = yield* run("tar", ["-xzOf", file, "package/package.json"], { cwd: out, timeoutMillis: 30_000 })
    return {
      directory,
      file,
      manifest: JSON.parse(manifest) as PackedManifest,
      entries: listing
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => line.replace(/^package\//, ""))
    }
  })

/** The version of a package that the workspace root pins (the consumer uses the same typescript and @types/node). */
const workspaceVersion = (name: string): string => {
  const root = JSON.parse(fs.readFileSync(path.join(workspaceRoot, "package.json"), "utf8")) as {
    devDependencies: Record<string, string>
  }
  const version = root.devDependencies[name]
  if (version === undefined) throw new Error(`the workspace root does not pin ${name}`)
  return version
}

/** The installed consumer project and the tarballs it was installed from. */
export class ConsumerProject extends Context.Service<
  ConsumerProject,
  { readonly directory: string; readonly tarballs: ReadonlyArray<Tarball> }
>()("@leasehold/consumer-test/ConsumerProject") {
  /** Packs the published packages and installs them into a temporary project; both are removed with the layer. */
  static readonly layer: Layer.Layer<ConsumerProject, CommandFailed> = Layer.effect(
    ConsumerProject,
    Effect.gen(function* () {
      const packDir = yield* tempDir("leasehold-pack-")
      const tarballs = yield* Effect.forEach(publishedPackages, (directory) => pack(directory, packDir))
      const directory = yield* tempDir("leasehold-consumer-")
      fs.cpSync(fixturesDir, directory, { recursive: true })
      // The README's programs as a user copies them, for the type checks (they are run with a test server's URL).
      fs.mkdirSync(path.join(directory, "readme"))
      for (const program of readmePrograms())
        fs.writeFileSync(path.join(directory, "readme", `${program.name}.ts`), program.code)
      const manifest = {
        name: "leasehold-consumer",
        private: true,
        type: "module",
        dependencies: {
          ...Object.fromEntries(tarballs.map((tarball) => [tarball.manifest.name, `file:${tarball.file}`])),
          effect: "^4.1.0",
          "@effect/platform-node": "^4.1.0",
          redis: "^6.0.0"
        },
        devDependencies: {
          typescript: workspaceVersion("typescript"),
          "@types/node": workspaceVersion("@types/node")
        }
      }
      fs.writeFileSync(path.join(directory, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`)
      yield* run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
        cwd: directory,
        timeoutMillis: 240_000
      })
      return { directory, tarballs }
    })
  )
}

/** A Node binary of one supported major version. */
export interface NodeBinary {
  readonly major: number
  readonly file: string
}

/**
 * Finds Node `major`: the Node running the tests when it is that version, else the toolchain's copy in `tools/`
 * (Node 24 in `tools/node_modules`, Node 22 in `tools/node22/node_modules`, both installed by scripts/toolchain.sh).
 */
export const nodeBinary = (major: 22 | 24): Effect.Effect<NodeBinary, CommandFailed> =>
  Effect.gen(function* () {
    const toolchain =
      major === 24
        ? path.join(workspaceRoot, "tools/node_modules/.bin/node")
        : path.join(workspaceRoot, "tools/node22/node_modules/.bin/node")
    const candidates = [process.execPath, toolchain].filter((file) => fs.existsSync(file))
    for (const file of candidates) {
      const version = yield* run(file, ["--version"], { cwd: workspaceRoot, timeoutMillis: 30_000 })
      if (version.trim().startsWith(`v${major}.`)) return { major, file }
    }
    return yield* new CommandFailed({
      message:
        `Node ${major} was not found (looked at ${[process.execPath, toolchain].join(", ")}): ` +
        `run \`sh scripts/toolchain.sh --with-nodes true\`, which installs both into tools/`
    })
  })
