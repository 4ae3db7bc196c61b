#!/usr/bin/env bash
# Runs a command inside a root file system (the Debian sid root made by
# make-sidroot.sh) without chroot, so that user namespaces stay usable inside
# (bubblewrap, Bazel's linux-sandbox, BuildStream's sandbox):
#
#   in-sidroot.sh ROOT CMD [ARG...]
#
# The command runs in a private mount namespace (unshare --mount --propagation
# private) whose root is ROOT, entered with pivot_root; the kernel refuses to
# create user namespaces in a plain chroot, not after pivot_root. Everything
# else is the host's: the network namespace (127.0.0.1 reaches servers on the
# host), the PID namespace, the user. Inside:
#   /proc, /sys, /dev (with /dev/pts)  bound from the host
#   /tmp, /run, /var/tmp               private, empty tmpfs
#   /etc/resolv.conf, /etc/hosts       the host's (when ROOT has these files)
#   each directory of $SIDROOT_BIND    bound read-write at the same path
#                                      (colon-separated; paths under /tmp are
#                                      fine, other mount points must exist in ROOT)
# ROOT itself is bound read-only unless SIDROOT_WRITABLE=1 (make-sidroot.sh
# installs packages that way). The command starts in $SIDROOT_CWD, else in the
# current directory if it is one of the bound directories (or below one), else
# in /. The environment is passed through, with PATH reset to the usual one
# unless SIDROOT_KEEP_PATH=1. Needs root (mount namespaces). The command's exit
# status is returned.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: in-sidroot.sh ROOT CMD [ARG...]" >&2
  exit 2
fi
ROOT="$(cd "$1" && pwd -P)"
shift
if [[ ! -x "$ROOT/bin/sh" && ! -x "$ROOT/usr/bin/sh" ]]; then
  echo "in-sidroot: $ROOT does not look like a root file system" >&2
  exit 2
fi

CWD="${SIDROOT_CWD:-}"
if [[ -z "$CWD" ]]; then
  CWD=/
  here="$(pwd -P)"
  IFS=: read -r -a binds <<<"${SIDROOT_BIND:-}"
  for b in "${binds[@]}"; do
    [[ -n "$b" ]] || continue
    b="$(cd "$b" && pwd -P)"
    if [[ "$here" == "$b" || "$here" == "$b"/* ]]; then CWD="$here"; fi
  done
fi

export SIDROOT_ROOT="$ROOT" SIDROOT_CWD_RESOLVED="$CWD"
if [[ "${SIDROOT_KEEP_PATH:-0}" != 1 ]]; then
  export SIDROOT_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
else
  export SIDROOT_PATH="$PATH"
fi

# The inner script runs with the host's bash in the new mount namespace; after
# pivot_root, the command is found in ROOT.
exec unshare --mount --propagation private -- /bin/bash -c '
set -euo pipefail
R="$SIDROOT_ROOT"
fail() { echo "in-sidroot: $*" >&2; exit 125; }
mount --bind "$R" "$R" || fail "cannot bind $R"
mount --rbind /proc "$R/proc" || fail "cannot bind /proc"
mount --rbind /sys "$R/sys" || fail "cannot bind /sys"
mount --rbind /dev "$R/dev" || fail "cannot bind /dev"
for t in tmp run var/tmp; do
  [[ -d "$R/$t" ]] || continue
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/$t"
done
for f in etc/resolv.conf etc/hosts; do
  if [[ -f "/$f" && -e "$R/$f" && ! -L "$R/$f" ]]; then mount --bind "/$f" "$R/$f"; fi
done
IFS=: read -r -a binds <<<"${SIDROOT_BIND:-}"
for b in "${binds[@]}"; do
  [[ -n "$b" ]] || continue
  b="$(cd "$b" && pwd -P)"
  mkdir -p "$R$b" 2>/dev/null || fail "cannot create mount point $b in the root (read-only?)"
  mount --rbind "$b" "$R$b" || fail "cannot bind $b"
done
# The old root goes to a directory in the private /run tmpfs, then away.
mkdir -p "$R/run/.oldroot"
if [[ "${SIDROOT_WRITABLE:-0}" != 1 ]]; then
  mount -o remount,bind,ro "$R" || fail "cannot make the root read-only"
fi
cd "$R"
pivot_root . run/.oldroot || fail "pivot_root failed"
cd /
umount -l /run/.oldroot || fail "cannot detach the old root"
rmdir /run/.oldroot
cd "$SIDROOT_CWD_RESOLVED"
export PATH="$SIDROOT_PATH"
unset SIDROOT_ROOT SIDROOT_CWD_RESOLVED SIDROOT_PATH SIDROOT_BIND SIDROOT_WRITABLE SIDROOT_CWD SIDROOT_KEEP_PATH
exec "$@"
' in-sidroot "$@"
