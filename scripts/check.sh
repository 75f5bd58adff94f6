#!/bin/sh
# Types, lint and format: everything `pnpm check` promises, failing on the first problem.
set -eu
pnpm -r --parallel typecheck
biome check .
