#!/bin/sh
# Runs a command with the toolchain this workspace needs, on any machine that has npm:
# Node >= 22 and pnpm 12.4.2 (installed into tools/ from the npm registry when the machine lacks them),
# the workspace's dependencies (pnpm install, only when the lockfile changed); with --with-redis,
# a redis-server binary for the tests (apt-get install when missing and we are root); with --with-nodes,
# both supported Node lines for the pack-and-consume test (Node 24 in tools/, Node 22 in tools/node22/).
#   sh scripts/toolchain.sh [--with-redis] [--with-nodes] COMMAND [ARGS...]
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"

with_redis=false
with_nodes=false
while :; do
  case "${1:-}" in
    --with-redis) with_redis=true; shift ;;
    --with-nodes) with_nodes=true; shift ;;
    *) break ;;
  esac
done

pnpm_version=$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' package.json)
install_tools() {
  if [ ! -x tools/node_modules/.bin/pnpm ] || [ ! -x tools/node_modules/.bin/node ] \
    || [ "$(tools/node_modules/.bin/pnpm --version 2>/dev/null)" != "$pnpm_version" ]; then
    echo "toolchain: installing Node 24 and pnpm $pnpm_version into tools/ (npm ci)" >&2
    npm ci --prefix tools --no-audit --no-fund --loglevel=error >&2
  fi
}

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
have_pnpm=$(pnpm --version 2>/dev/null || true)
if [ "$node_major" -lt 22 ] || [ "$have_pnpm" != "$pnpm_version" ]; then
  install_tools
  PATH="$root/tools/node_modules/.bin:$PATH"
  export PATH
fi

if [ "$with_nodes" = true ]; then
  install_tools
  node22_version=$(sed -n 's/.*"node": *"\([^"]*\)".*/\1/p' tools/node22/package.json)
  if [ "$(tools/node22/node_modules/.bin/node --version 2>/dev/null)" != "v$node22_version" ]; then
    echo "toolchain: installing Node $node22_version into tools/node22/ (npm ci)" >&2
    npm ci --prefix tools/node22 --no-audit --no-fund --loglevel=error >&2
  fi
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
