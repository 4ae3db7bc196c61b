#!/usr/bin/env bash
# Checks that a sysroot tarball made by make-sysroot.sh works as a root file
# system: extracts it to a temporary directory and compiles and runs a C program
# inside it with bubblewrap.
#
#   verify-sysroot.sh [SYSROOT_TAR]   (default: the cached one make-sysroot.sh prints)
set -euo pipefail

TARBALL="${1:-}"
if [[ -z "$TARBALL" ]]; then
  TARBALL="$(bash "$(dirname "$0")/make-sysroot.sh" | sed -n 's/^path=//p')"
fi
command -v bwrap >/dev/null || { echo "verify-sysroot: bwrap is not installed" >&2; exit 1; }

DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
tar -xf "$TARBALL" -C "$DIR" --numeric-owner
bwrap --bind "$DIR" / --proc /proc --dev /dev --tmpfs /tmp /bin/sh -c \
  'echo "int main(){return 0;}" > /tmp/a.c && gcc /tmp/a.c -o /tmp/a && /tmp/a && make --version >/dev/null'
echo "verify-sysroot: $TARBALL works (gcc compiled and ran a program)" >&2
