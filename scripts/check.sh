#!/bin/sh
# Exports in step with the modules, types, lint and format: everything `npm run check` promises, failing on the
# first problem.
set -eu
node scripts/exports.mjs
for project in packages/*/tsconfig.json; do
  echo "tsc: $project"
  tsc --noEmit -p "$project"
done
biome check .
