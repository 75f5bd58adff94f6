#!/bin/sh
# Runs a command with the toolchain this workspace needs, on any machine that has npm:
# Node >= 22 and pnpm 12.4.2 (installed into tools/ from the npm registry when the machine lacks them),
# the workspace's dependencies (pnpm install, only when the lockfile changed), and, with --with-redis,
# a redis-server binary for the tests (apt-get install when missing and we are root).
#   sh scripts/toolchain.sh [--with-redis] COMMAND [ARGS...]
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"

with_redis=false
if [ "${1:-}" = "--with-redis" ]; then with_redis=true; shift; fi

pnpm_version=$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' package.json)
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
have_pnpm=$(pnpm --version 2>/dev/null || true)
if [ "$node_major" -lt 22 ] || [ "$have_pnpm" != "$pnpm_version" ]; then
  if [ ! -x tools/node_modules/.bin/pnpm ] || [ ! -x tools/node_modules/.bin/node ] \
    || [ "$(tools/node_modules/.bin/pnpm --version 2>/dev/null)" != "$pnpm_version" ]; then
    echo "toolchain: installing Node 24 and pnpm $pnpm_version into tools/ (npm ci)" >&2
    npm ci --prefix tools --no-audit --no-fund --loglevel=error >&2
  fi
  PATH="$root/tools/node_modules/.bin:$PATH"
  export PATH
fi

stamp=node_modules/.leasehold-install-stamp
if [ ! -f "$stamp" ] || [ pnpm-lock.yaml -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  pnpm install --frozen-lockfile --reporter=silent >&2
  touch "$stamp"
fi

if [ "$with_redis" = true ] && [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "toolchain: installing redis-server (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  else
    echo "toolchain: the tests need redis-server on PATH (or REDIS_URL); install it, e.g. apt-get install redis-server" >&2
    exit 1
  fi
fi

exec "$@"
