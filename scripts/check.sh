#!/bin/sh
# Types, lint and format: everything `pnpm check` promises, failing on the first problem.
set -eu
for project in packages/*/tsconfig.json scripts/tsconfig.json; do
  echo "tsc: $project"
  tsc --noEmit -p "$project"
done
node scripts/check-docs.ts
biome check .
