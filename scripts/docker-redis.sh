#!/bin/sh
# A Docker engine and a Redis image for the container path of RedisTestServer, on a Debian machine (as root) that
# reaches apt but no image registry. Idempotent, and every step is bounded by a timeout:
#   1. installs docker.io (apt-get) when there is neither an engine answering nor a dockerd to start;
#   2. starts dockerd with --bridge=none --iptables=false when no engine answers: no default 172.17 bridge, so the
#      only networks are host and none (log and pid file in $LEASEHOLD_DOCKER_STATE, default /tmp/leasehold-docker);
#   3. imports $LEASEHOLD_REDIS_IMAGE (default leasehold/redis-test:local) when absent: a rootfs holding this
#      machine's redis-server and the libraries ldd lists (redis-server is installed with apt-get when missing).
# Then, with a COMMAND, runs it with the environment testcontainers needs here and stops a dockerd it started;
# without one, prints that environment and leaves dockerd running (stop it later with --stop).
#   sh scripts/docker-redis.sh [COMMAND [ARGS...]]
#   sh scripts/docker-redis.sh --stop
set -eu
# dockerd and containerd live in /usr/sbin, which a non-login shell (or a CI runner) may not have on its PATH.
PATH="$PATH:/usr/sbin:/sbin"
export PATH

image=${LEASEHOLD_REDIS_IMAGE:-leasehold/redis-test:local}
state=${LEASEHOLD_DOCKER_STATE:-/tmp/leasehold-docker}
pidfile=$state/dockerd.pid
log=$state/dockerd.log

say() { echo "docker-redis: $*" >&2; }
die() {
  say "$*"
  exit 1
}
engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# The dockerd this script started, if it still runs: its pid file names a live dockerd.
started_pid() {
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

stop_dockerd() {
  pid=$(started_pid) || {
    rm -f "$pidfile"
    return 0
  }
  say "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  # dockerd stops its containers and containerd before it exits.
  i=0
  while [ -d "/proc/$pid" ] && [ "$i" -lt 200 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  if [ -d "/proc/$pid" ]; then
    say "dockerd did not exit within 20 s of SIGTERM: SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = "--stop" ]; then
  stop_dockerd
  exit 0
fi

as_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run this script as root, or do it by hand: see docs/testing.md)"; }

apt_install() {
  as_root "installing $*"
  command -v apt-get >/dev/null 2>&1 || die "installing $* needs apt-get (Debian or Ubuntu)"
  mkdir -p "$state"
  say "installing $* (apt-get; log: $state/apt.log)"
  { DEBIAN_FRONTEND=noninteractive timeout 120 apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends "$@"; } >"$state/apt.log" 2>&1 ||
    die "apt-get could not install $*; the end of $state/apt.log:
$(tail -n 20 "$state/apt.log")"
}

started_here=false
if ! engine_answers; then
  { command -v dockerd && command -v docker; } >/dev/null 2>&1 || apt_install docker.io
  as_root "starting dockerd"
  mkdir -p "$state"
  say "starting dockerd --bridge=none --iptables=false (log: $log)"
  setsid dockerd --bridge=none --iptables=false >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  started_here=true
  i=0
  until engine_answers; do
    i=$((i + 1))
    if [ "$i" -ge 30 ] || ! started_pid >/dev/null; then
      stop_dockerd
      die "dockerd did not answer within 30 s; the end of $log:
$(tail -n 20 "$log")"
    fi
    sleep 1
  done
fi

# From here on a failure must not leave behind a dockerd this run started.
cleanup() { if [ "$started_here" = true ]; then stop_dockerd; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

build_image() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  binary=$(readlink -f "$(command -v redis-server)")
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/usr/bin" "$rootfs/tmp" "$rootfs/data"
  chmod 1777 "$rootfs/tmp"
  # Named redis-server: the binary picks its mode (server or redis-check-rdb) from its name.
  cp "$binary" "$rootfs/usr/bin/redis-server"
  # Each library, and the loader, at the path the loader found it on this machine (symlinks resolved).
  for lib in $(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  say "importing $image (redis-server $(redis-server --version | cut -d' ' -f3), $(du -sh "$rootfs" | cut -f1))"
  tar -C "$rootfs" -c . | timeout 120 docker import \
    --change 'ENV PATH=/usr/bin' \
    --change 'WORKDIR /data' \
    --change 'CMD ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]' \
    - "$image" >/dev/null
  rm -rf "$rootfs"
  # The image must run: a missing library shows here, not in the first test.
  timeout 60 docker run --rm --network host "$image" redis-server --version >/dev/null ||
    die "$image was imported but redis-server does not run in it"
}

if ! timeout 30 docker image inspect "$image" >/dev/null 2>&1; then build_image; fi

# No registry is reachable: Ryuk (the reaper image) cannot be pulled; the layer stops its container itself.
TESTCONTAINERS_RYUK_DISABLED=true
TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
LEASEHOLD_REDIS_IMAGE=$image
export TESTCONTAINERS_RYUK_DISABLED TESTCONTAINERS_HOST_OVERRIDE LEASEHOLD_REDIS_IMAGE

if [ "$#" -gt 0 ]; then
  status=0
  "$@" || status=$?
  exit "$status"
fi

trap - EXIT
say "ready: dockerd answers, $image is there. Run the container tests with:"
echo "  export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 LEASEHOLD_REDIS_IMAGE=$image"
echo "  npx vitest run --config packages/testing/vitest.container.config.ts"
if started_pid >/dev/null; then echo "  sh scripts/docker-redis.sh --stop   # when done: stops the dockerd this script started"; fi
