import * as fs from "node:fs"
import * as path from "node:path"
import { assert, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Context, Effect, Layer } from "effect"
import { readmePrograms, withRedisUrl } from "../../../scripts/readme-programs.ts"
import { ConsumerProject, fixturesDir, nodeBinary, run, type Tarball, workspaceRoot } from "./ConsumerProject.ts"

/** The redis-server the programs talk to: spawned by the test kit on a free port of 127.0.0.1. */
class RedisUrl extends Context.Service<RedisUrl, string>()("@leasehold/consumer-test/RedisUrl") {
  static readonly layer = Layer.effect(
    RedisUrl,
    Effect.map(RedisTestServer.startServer(), (server) => server.url)
  )
}

/** Every file in fixtures/programs runs with each Node; add a program by adding a file. */
const programs = fs.readdirSync(path.join(fixturesDir, "programs")).sort()
const typeScriptConfigs = ["tsconfig.nodenext.json", "tsconfig.bundler.json"]
const nodeMajors = [24, 22] as const

/** What a tarball may hold: the build, the sources beside it for go-to-source, README, LICENSE, the manifest. */
const allowedEntry = /^(dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map)|src\/.+\.ts|README\.md|LICENSE|package\.json)$/

/** A package's public modules: the top level of its `src/` (index.ts is the root export). */
const publicModules = (directory: string): ReadonlyArray<string> =>
  fs
    .readdirSync(path.join(workspaceRoot, directory, "src"))
    .filter((file) => file.endsWith(".ts") && file !== "index.ts")
    .map((file) => file.slice(0, -".ts".length))

const tarballOf = (name: string) =>
  Effect.gen(function* () {
    const { tarballs } = yield* ConsumerProject
    const tarball = tarballs.find((candidate) => candidate.manifest.name === name)
    assert.isDefined(tarball, `${name} was packed`)
    return tarball!
  })

const eachTarball = (check: (tarball: Tarball) => void) =>
  Effect.gen(function* () {
    const { tarballs } = yield* ConsumerProject
    assert.sameMembers(
      tarballs.map((tarball) => tarball.manifest.name),
      ["leasehold", "@leasehold/testing"]
    )
    for (const tarball of tarballs) check(tarball)
  })

layer(Layer.mergeAll(ConsumerProject.layer, RedisUrl.layer), { excludeTestServices: true, timeout: "300 seconds" })(
  "pack and consume",
  (it) => {
    it.effect("each tarball holds only dist, the sources, README, LICENSE and package.json", () =>
      eachTarball((tarball) => {
        const unexpected = tarball.entries.filter((entry) => !allowedEntry.test(entry))
        assert.deepStrictEqual(unexpected, [], `${tarball.manifest.name} ships only what users need`)
        const forbidden = tarball.entries.filter((entry) =>
          /(^|\/)(test|soak|fixtures)\/|\.test\.ts$|tsconfig|vitest\.config|tsbuildinfo/.test(entry)
        )
        assert.deepStrictEqual(forbidden, [], `${tarball.manifest.name} ships no tests, soak or configs`)
        for (const required of ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"])
          assert.include(tarball.entries, required, `${tarball.manifest.name} ships ${required}`)
        for (const module of publicModules(tarball.directory))
          for (const file of [
            `src/${module}.ts`,
            `dist/${module}.js`,
            `dist/${module}.d.ts`,
            `dist/${module}.d.ts.map`
          ])
            assert.include(tarball.entries, file, `${tarball.manifest.name} ships ${file}`)
      })
    )

    it.effect("each packed manifest exports dist/ for every public module, and nothing internal", () =>
      eachTarball((tarball) => {
        const { exports, name } = tarball.manifest
        const expected: Record<string, string | null> = {
          "./package.json": "./package.json",
          ".": "./dist/index.js",
          ...Object.fromEntries(
            publicModules(tarball.directory).map((module) => [`./${module}`, `./dist/${module}.js`])
          ),
          "./internal/*": null
        }
        assert.deepStrictEqual(exports, expected, `${name}'s exports name each public module`)
        for (const target of Object.values(exports))
          if (target !== null) assert.include(tarball.entries, target.slice("./".length), `${name} ships ${target}`)
        assert.deepStrictEqual(tarball.manifest.publishConfig, { access: "public" }, "pnpm moved its exports up")
        assert.notMatch(JSON.stringify(tarball.manifest), /workspace:/, `${name} names no workspace: versions`)
        assert.strictEqual(tarball.manifest.engines?.node, ">=22.12")
        assert.strictEqual(tarball.manifest.peerDependencies?.effect, "^4.1.0")
      })
    )

    it.effect("every source map points at a source shipped beside it (go-to-source)", () =>
      Effect.gen(function* () {
        const { directory, tarballs } = yield* ConsumerProject
        for (const tarball of tarballs) {
          const installed = path.join(directory, "node_modules", tarball.manifest.name)
          const maps = tarball.entries.filter((entry) => entry.endsWith(".map"))
          assert.isNotEmpty(maps)
          for (const map of maps) {
            const { sources } = JSON.parse(fs.readFileSync(path.join(installed, map), "utf8")) as {
              sources: ReadonlyArray<string>
            }
            for (const source of sources) {
              const shipped = path.relative(installed, path.resolve(installed, path.dirname(map), source))
              assert.include(tarball.entries, shipped, `${tarball.manifest.name}/${map} points at ${shipped}`)
            }
          }
        }
      })
    )

    it.effect("leasehold needs only effect; @effect/platform-node and redis are optional peers", () =>
      Effect.gen(function* () {
        const { manifest } = yield* tarballOf("leasehold")
        assert.isUndefined(manifest.dependencies)
        assert.deepStrictEqual(manifest.peerDependenciesMeta, {
          "@effect/platform-node": { optional: true },
          redis: { optional: true }
        })
      })
    )

    it.effect("@leasehold/testing depends on nothing; leasehold is a peer, testcontainers and vitest optional", () =>
      Effect.gen(function* () {
        const { manifest } = yield* tarballOf("@leasehold/testing")
        const leasehold = yield* tarballOf("leasehold")
        assert.isUndefined(manifest.dependencies)
        assert.strictEqual(manifest.peerDependencies?.leasehold, `^${leasehold.manifest.version}`)
        assert.deepStrictEqual(manifest.peerDependenciesMeta, {
          "@effect/vitest": { optional: true },
          testcontainers: { optional: true }
        })
      })
    )

    // TypeScript 7's tsc is a native binary behind a small launcher, so the Node that starts it cannot change the
    // result: each configuration is checked once (it checks every declaration file, Effect's included).
    for (const config of typeScriptConfigs) {
      it.effect(`tsc -p ${config} passes (strict, skipLibCheck: false)`, () =>
        Effect.gen(function* () {
          const { directory } = yield* ConsumerProject
          const node = yield* nodeBinary(24)
          yield* run(node.file, ["node_modules/typescript/bin/tsc", "-p", config], {
            cwd: directory,
            timeoutMillis: 90_000
          })
        })
      )
    }

    for (const major of nodeMajors) {
      for (const program of programs) {
        it.effect(`programs/${program} runs with Node ${major}`, () =>
          Effect.gen(function* () {
            const { directory } = yield* ConsumerProject
            const node = yield* nodeBinary(major)
            yield* run(node.file, [path.join("programs", program)], {
              cwd: directory,
              timeoutMillis: 60_000,
              env: { REDIS_URL: yield* RedisUrl }
            })
          })
        )
      }
      // The README's programs, from the installed tarballs, as copied by a user (only the URL is the test server's).
      for (const program of readmePrograms()) {
        it.effect(`README's "${program.heading}" runs with Node ${major}`, () =>
          Effect.gen(function* () {
            const { directory } = yield* ConsumerProject
            const node = yield* nodeBinary(major)
            const file = path.join(directory, "readme-run", `${program.name}.node${major}.ts`)
            fs.mkdirSync(path.dirname(file), { recursive: true })
            fs.writeFileSync(file, withRedisUrl(program, yield* RedisUrl))
            yield* run(node.file, [file], { cwd: directory, timeoutMillis: 60_000 })
          })
        )
      }
    }
  }
)
