#!/usr/bin/env bash
# Builds a Debian sid root file system with the modern REAPI clients that
# bookworm lacks (Bazel 7 from bazel-bootstrap, BuildStream 2, BuildBox, siso,
# bubblewrap), for end-to-end tests that run them against Granary. Packages are
# never installed on the host: the clients run inside the root through
# in-sidroot.sh.
#
#   make-sidroot.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $GRANARY_SIDROOT_CACHE, then ~/.cache/granary-sidroot.
# The root is CACHE_DIR/root; it is reused while CACHE_DIR/root.config matches
# the configuration below (that file is written last, so an interrupted build is
# never reused); downloaded .debs for debootstrap are kept in CACHE_DIR/debs.
# One build at a time per cache (flock); a second caller waits, then reuses.
# Prints `root=/abs/path` on stdout; progress and timings go to stderr (and to
# CACHE_DIR/build.log). Needs root, debootstrap, and access to the mirror.
# GRANARY_SIDROOT_REBUILD=1 forces a rebuild.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=sid
MIRROR="${GRANARY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
VARIANT=minbase
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
# Installed inside the root with apt-get, recommended packages included (the
# clients' Recommends bring the pieces they use at run time).
PACKAGES="bazel-bootstrap buildstream buildbox siso bubblewrap ca-certificates git g++ gcc libc6-dev python3"
# Bump when the steps below change, so caches are rebuilt.
FORMAT=1

CACHE="${1:-${GRANARY_SIDROOT_CACHE:-$HOME/.cache/granary-sidroot}}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
ROOT="$CACHE/root"
CONFIG="$CACHE/root.config"
WANT="suite=$SUITE mirror=$MIRROR variant=$VARIANT packages=$PACKAGES arch=$ARCH format=$FORMAT"

log() { printf '%s\n' "make-sidroot: $*" >&2; }

exec 9>"$CACHE/.lock"
flock 9

if [[ "${GRANARY_SIDROOT_REBUILD:-0}" != 1 && -d "$ROOT" && -f "$CONFIG" && "$(cat "$CONFIG")" == "$WANT" ]]; then
  log "reusing $ROOT"
  printf 'root=%s\n' "$ROOT"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  log "must run as root (debootstrap, mount namespaces)"
  exit 1
fi
command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
command -v unshare >/dev/null || { log "unshare (util-linux) is not installed"; exit 1; }

# Removes a build directory, never following a mount out of it (debootstrap runs
# in a private mount namespace, so its /proc and /sys mounts should be gone, but a
# build killed on an older setup may have left some).
remove_build() {
  local dir="$1" m
  for m in proc sys dev/pts dev; do
    mountpoint -q "$dir/root/$m" 2>/dev/null && umount -l "$dir/root/$m" || true
  done
  rm -rf --one-file-system "$dir"
}

START=$(date +%s)
rm -f "$CONFIG"
# Left over by a build that was killed (we hold the lock, so none is running).
for stale in "$CACHE"/build.*; do
  [[ -d "$stale" ]] && remove_build "$stale"
done
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'remove_build "$WORK"' EXIT

NEW="$WORK/root"
mkdir -p "$NEW" "$CACHE/debs"
log "debootstrap $SUITE ($VARIANT) from $MIRROR"
if ! unshare --mount --propagation private -- debootstrap --variant="$VARIANT" --arch="$ARCH" --cache-dir="$CACHE/debs" \
  "$SUITE" "$NEW" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  log "debootstrap failed; last lines of its log:"
  tail -n 30 "$WORK/debootstrap.log" >&2
  [[ -f "$NEW/debootstrap/debootstrap.log" ]] && tail -n 30 "$NEW/debootstrap/debootstrap.log" >&2
  exit 1
fi
T1=$(date +%s)
log "debootstrap done in $((T1 - START))s"

# The mirror's sid index may be a frozen snapshot whose Valid-Until has passed.
cat >"$NEW/etc/apt/apt.conf.d/99granary" <<'CONF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "true";
Dpkg::Use-Pty "false";
CONF
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$NEW/etc/apt/sources.list"
# No daemons are started by package scripts.
printf '#!/bin/sh\nexit 101\n' >"$NEW/usr/sbin/policy-rc.d"
chmod 755 "$NEW/usr/sbin/policy-rc.d"
# Mount points for in-sidroot.sh (binds over these files).
for f in etc/resolv.conf etc/hosts; do
  rm -f "$NEW/$f"
  : >"$NEW/$f"
done
mkdir -p "$NEW/var/tmp" "$NEW/run"

log "apt-get install $PACKAGES"
if ! SIDROOT_WRITABLE=1 DEBIAN_FRONTEND=noninteractive "$HERE/in-sidroot.sh" "$NEW" /bin/sh -ec "
    apt-get update -q
    apt-get install -y -q $PACKAGES
    apt-get clean
    rm -rf /var/lib/apt/lists/*
  " >"$WORK/apt.log" 2>&1; then
  log "apt-get failed; last lines of its log:"
  tail -n 40 "$WORK/apt.log" >&2
  exit 1
fi
T2=$(date +%s)
log "apt-get done in $((T2 - T1))s"

rm -rf "$NEW/debootstrap"
: >"$NEW/etc/machine-id"

rm -rf --one-file-system "$ROOT"
mv "$NEW" "$ROOT"
printf '%s' "$WANT" >"$CONFIG"
SIZE="$(du -sh "$ROOT" | cut -f1)"
{
  echo "built $(date -u +%FT%TZ): debootstrap $((T1 - START))s, apt-get $((T2 - T1))s, total $(($(date +%s) - START))s, size $SIZE"
} | tee -a "$CACHE/build.log" | sed 's/^/make-sidroot: /' >&2
printf 'root=%s\n' "$ROOT"
