#!/bin/sh
# Exports in step with the modules, types, lint and format, and every ts block of the docs type-checked: everything
# `npm run check` promises, failing on the first problem.
set -eu
node scripts/exports.mjs
for project in packages/*/tsconfig.json scripts/tsconfig.json; do
  echo "tsc: $project"
  tsc --noEmit -p "$project"
done
node scripts/check-docs.ts
biome check .
