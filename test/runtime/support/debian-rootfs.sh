#!/usr/bin/env bash
# Build (once) the Debian 12 root file system the runtime tests boot with
# systemd-nspawn, and print the path of its cached tarball:
#   ~/.cache/epoll-echo/debian-bookworm-systemd.tar   (or $EPOLL_ECHO_CACHE)
# debootstrap --variant=minbase with systemd, systemd-sysv and dbus, from the
# Debian mirror apt already uses (read from /etc/apt/sources.list{,.d}); about
# 45 s the first time, then reused. Concurrent callers wait on a lock file.
set -euo pipefail
cache=${EPOLL_ECHO_CACHE:-$HOME/.cache/epoll-echo}
tarball=$cache/debian-bookworm-systemd.tar
mkdir -p "$cache"
exec 9>"$cache/rootfs.lock"
flock 9
if [[ -s $tarball ]]; then
  echo "$tarball"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debian-rootfs: debootstrap not installed (apt-get install debootstrap)" >&2; exit 1; }

# The first Debian archive URI apt is configured with, one-line or deb822 format,
# but not the security archive (it has no bookworm suite).
mirror=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
  | sed -n -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([a-z]\+:\/\/[^[:space:]]\+\).*/\2/p' \
           -e 's/^URIs:[[:space:]]*\([^[:space:]]\+\).*/\1/p' \
  | { grep -v -e security -e '/debian-ports' || true; } | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d "${TMPDIR:-/var/tmp}/epoll-echo-rootfs.XXXXXX")
chmod 0755 "$root"   # it becomes "/" (mktemp's 0700 would lock non-root users out)
trap 'rm -rf "$root" "$tarball.tmp"' EXIT
echo "debian-rootfs: debootstrap bookworm from $mirror (once; cached in $tarball)" >&2
if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root" "$mirror" >"$root.log" 2>&1; then
  tail -n 20 "$root.log" >&2
  rm -f "$root.log"
  exit 1
fi
rm -f "$root.log"
# A booted container needs a machine id of its own (nspawn provides one when
# the file is empty) and no apt caches in the tarball.
: >"$root/etc/machine-id"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
