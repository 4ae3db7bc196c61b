#!/usr/bin/env bash
# Builds a minimal Debian bookworm sysroot with a C toolchain and packs it as a
# deterministic tarball, for end-to-end tests that build BuildStream projects
# against a real root file system.
#
#   make-sysroot.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $GRANARY_SYSROOT_CACHE, then ~/.cache/granary-sysroot.
# The result, CACHE_DIR/sysroot.tar, is reused while CACHE_DIR/sysroot.config
# matches the configuration below; downloaded .debs are kept in CACHE_DIR/debs
# so a rebuild does not fetch them again. Prints two lines on stdout:
#   path=/abs/path/sysroot.tar
#   sha256=<hex>
# Progress goes to stderr. Needs root (debootstrap, mknod) and network access to
# the mirror. GRANARY_SYSROOT_REBUILD=1 forces a rebuild.
set -euo pipefail

SUITE=bookworm
# The mirror apt uses on the development machines (/etc/apt/sources.list.d/debian.sources).
MIRROR="${GRANARY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
VARIANT=minbase
PACKAGES=gcc,make,libc6-dev,binutils
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
# Bump when the cleaning or packing below changes, so caches are rebuilt.
FORMAT=2

CACHE="${1:-${GRANARY_SYSROOT_CACHE:-$HOME/.cache/granary-sysroot}}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
TARBALL="$CACHE/sysroot.tar"
CONFIG="$CACHE/sysroot.config"
WANT="suite=$SUITE mirror=$MIRROR variant=$VARIANT include=$PACKAGES arch=$ARCH format=$FORMAT"

log() { printf '%s\n' "make-sysroot: $*" >&2; }

report() {
  printf 'path=%s\n' "$TARBALL"
  printf 'sha256=%s\n' "$(sha256sum "$TARBALL" | cut -d' ' -f1)"
}

# One build at a time per cache; a second caller waits and then reuses the result.
exec 9>"$CACHE/.lock"
flock 9

if [[ "${GRANARY_SYSROOT_REBUILD:-0}" != 1 && -f "$TARBALL" && -f "$CONFIG" && "$(cat "$CONFIG")" == "$WANT" ]]; then
  log "reusing $TARBALL"
  report
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  log "must run as root (debootstrap)"
  exit 1
fi
command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }

START=$(date +%s)
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
cleanup() {
  # Never leave mounts behind; debootstrap mounts /proc and /sys in the target.
  for m in proc sys dev/pts dev; do
    mountpoint -q "$WORK/root/$m" 2>/dev/null && umount -l "$WORK/root/$m" || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

ROOT="$WORK/root"
mkdir -p "$ROOT" "$CACHE/debs"
log "debootstrap $SUITE ($VARIANT + $PACKAGES) from $MIRROR"
if ! debootstrap --variant="$VARIANT" --include="$PACKAGES" --arch="$ARCH" \
  --cache-dir="$CACHE/debs" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  log "debootstrap failed; last lines of its log:"
  tail -n 30 "$WORK/debootstrap.log" >&2
  [[ -f "$ROOT/debootstrap/debootstrap.log" ]] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
  exit 1
fi
log "debootstrap done in $(($(date +%s) - START))s"

for m in proc sys dev/pts; do
  mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m" || true
done

# Clean: no package archives, no device nodes, nothing under the pseudo file
# systems, and none of the files that differ from run to run.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin \
  "$ROOT"/var/lib/apt/lists/* "$ROOT"/debootstrap
find "$ROOT/var/cache/apt/archives" -mindepth 1 -not -name partial -not -name lock -exec rm -rf {} + 2>/dev/null || true
for d in dev proc sys run tmp var/tmp; do
  rm -rf "${ROOT:?}/$d"
  mkdir -p "$ROOT/$d"
done
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
chmod 0555 "$ROOT/proc" "$ROOT/sys"
find "$ROOT/var/log" -type f -delete
rm -f "$ROOT"/var/cache/ldconfig/aux-cache "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old \
  "$ROOT"/etc/*- "$ROOT"/var/lib/dbus/machine-id
: >"$ROOT/etc/machine-id"
# Documentation and translations are not needed to build (about 65 MB); the
# copyright files stay.
rm -rf "$ROOT"/usr/share/locale/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*
find "$ROOT/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
# Anything that is not a file, directory or symlink (sockets, FIFOs, devices).
find "$ROOT" -xdev \( -type b -o -type c -o -type p -o -type s \) -delete

log "packing"
# Deterministic: sorted names, fixed mtime, numeric owners, no atime/ctime.
tar --create --file="$WORK/sysroot.tar" --directory="$ROOT" \
  --sort=name --format=gnu --mtime=@0 --numeric-owner --hard-dereference \
  --one-file-system .
mv -f "$WORK/sysroot.tar" "$TARBALL"
printf '%s' "$WANT" >"$CONFIG"

log "built $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $(($(date +%s) - START))s"
report
