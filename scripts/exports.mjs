// Keeps each published package's `exports` in step with its modules: one subpath per top-level `src/*.ts`
// (`index.ts` is "."), `./internal/*` closed. The workspace resolves the sources; `publishConfig.exports` (which
// `pnpm pack` puts in the packed manifest) the build in `dist/`.
//   node scripts/exports.mjs           fails, naming the packages whose exports are out of date
//   node scripts/exports.mjs --write   rewrites them
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const write = process.argv.includes("--write")

const exportsFor = (modules, target) => ({
  "./package.json": "./package.json",
  ".": target("index"),
  ...Object.fromEntries(modules.map((module) => [`./${module}`, target(module)])),
  "./internal/*": null
})

const stale = []
for (const name of fs.readdirSync(path.join(root, "packages")).sort()) {
  const directory = path.join(root, "packages", name)
  const file = path.join(directory, "package.json")
  if (!fs.existsSync(file)) continue
  const manifest = JSON.parse(fs.readFileSync(file, "utf8"))
  if (manifest.private === true) continue
  const modules = fs
    .readdirSync(path.join(directory, "src"))
    .filter((entry) => entry.endsWith(".ts") && entry !== "index.ts")
    .map((entry) => entry.slice(0, -".ts".length))
    .sort()
  const expected = {
    exports: exportsFor(modules, (module) => `./src/${module}.ts`),
    publishExports: exportsFor(modules, (module) => `./dist/${module}.js`)
  }
  const actual = { exports: manifest.exports, publishExports: manifest.publishConfig?.exports }
  if (JSON.stringify(actual) === JSON.stringify(expected)) continue
  stale.push(`packages/${name}`)
  if (write) {
    manifest.exports = expected.exports
    manifest.publishConfig = { ...manifest.publishConfig, exports: expected.publishExports }
    fs.writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`)
  }
}

if (stale.length > 0 && !write) {
  console.error(
    `exports out of date with src/ in ${stale.join(", ")}: run \`node scripts/exports.mjs --write\` ` +
      "(one subpath per top-level module of src/)"
  )
  process.exit(1)
}
if (write) console.log(stale.length > 0 ? `rewrote exports in ${stale.join(", ")}` : "exports are up to date")
