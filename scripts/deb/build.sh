#!/usr/bin/env bash
# Build the Debian package of epoll-echo in one command (`bun run deb`).
#
#   bash scripts/deb/build.sh          the host's architecture (amd64)
#   bash scripts/deb/build.sh arm64    `bun run deb:arm64`: cross-built from
#                                      ./epoll-echo-arm64 (dpkg-buildpackage -a arm64)
#
#   1. installs missing build tools (debhelper, dpkg-dev, lintian) with apt-get
#   2. checks that debian/changelog's version (and the man page's .TH line)
#      equal package.json's
#   3. runs `bash scripts/build.sh` (or `... arm64`) when the binary is missing
#      or older than its sources
#   4. runs dpkg-buildpackage -b -us -uc on a copy of debian/ and the binary in
#      a temporary directory (dpkg-buildpackage writes into the parent
#      directory; this keeps the checkout and its parent clean, and lets two
#      builds run side by side)
#   5. copies the result to dist/epoll-echo_<version>_<arch>.deb,
#      dist/epoll-echo_<arch>.deb and ./epoll-echo_<arch>.deb
#   6. runs lintian: fails on any error or warning that is not overridden
#   7. checks that the packaged /usr/bin/epoll-echo is byte-identical to the
#      binary that went in (never stripped) and prints "epoll-echo <version>"
#      (an arm64 binary runs under qemu-aarch64 when qemu-user and
#      libc6-arm64-cross are installed; otherwise this check is skipped)
#
# Environment: EPOLL_ECHO_DEB_SKIP_LINTIAN=1 skips step 6 (not for CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
log() { printf 'deb: %s\n' "$*" >&2; }
die() { printf 'deb: error: %s\n' "$*" >&2; exit 1; }

# 1. Build tools.
missing=()
command -v dpkg-buildpackage >/dev/null || missing+=(dpkg-dev)
command -v dh >/dev/null || missing+=(debhelper)
command -v lintian >/dev/null || missing+=(lintian)
if [[ ${1:-} == arm64 ]]; then
  # cross build: the target's objdump (dh_makeshlibs, dh_shlibdeps) and C library (dependency)
  command -v aarch64-linux-gnu-objdump >/dev/null || missing+=(binutils-aarch64-linux-gnu)
  [[ -d /usr/aarch64-linux-gnu/lib ]] || missing+=(libc6-arm64-cross)
fi
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: run as root or: sudo apt-get install ${missing[*]}"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
fi
dh_ver=$(dpkg-query -W -f '${Version}' debhelper 2>/dev/null || true)
dpkg --compare-versions "${dh_ver:-0}" ge 13 || die "debhelper >= 13 needed (have ${dh_ver:-none})"

# 2. Version: package.json is the source of truth; debian/changelog must agree.
version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' package.json | head -n1)
[[ -n $version ]] || die "no \"version\" in package.json"
deb_version=$(dpkg-parsechangelog -S Version)
if [[ $deb_version != "$version" ]]; then
  die "debian/changelog is at $deb_version but package.json says $version.
  Add a changelog entry first, e.g.:  dch -v $version 'New upstream release.'  (package devscripts)
  or copy the top entry of debian/changelog and change its version and date (date -R)."
fi
grep -q "^\.TH EPOLL-ECHO 1 \"[^\"]*\" \"epoll-echo $version\"" debian/epoll-echo.1 \
  || die "debian/epoll-echo.1: update the .TH line to \"epoll-echo $version\" (and its date)"
host_arch=$(dpkg --print-architecture)
[[ $host_arch == amd64 ]] || die "the packages are built on amd64 (host is $host_arch)"
arch=${1:-$host_arch}
case $arch in
  amd64) bin=epoll-echo; run=(); build_args=(); cross=() ;;
  arm64) bin=epoll-echo-arm64; run=(qemu-aarch64 -L /usr/aarch64-linux-gnu); build_args=(arm64); cross=(-aarm64 -d) ;;
  *) die "unknown architecture '$arch' (amd64 or arm64)" ;;
esac
# Whether this host can run a binary of $arch (natively or under qemu-aarch64).
can_run() { ((${#run[@]} == 0)) || { command -v qemu-aarch64 >/dev/null && [[ -d /usr/aarch64-linux-gnu ]]; }; }
# Runs "$1 --version" and checks it prints "epoll-echo <version>".
check_version() {
  if ! can_run; then
    log "not run: $1 (no qemu-aarch64 here: apt-get install qemu-user libc6-arm64-cross)"
    return
  fi
  local got
  got=$("${run[@]}" "$1" --version 2>&1 || true)
  [[ $got == "epoll-echo $version" ]] || die "$1 --version printed '$got', expected 'epoll-echo $version'$2"
}

# 3. The binary (scripts/build.sh compiles and runs it once).
if [[ ! -x $bin ]] || [[ -n $(find src package.json bun.lock scripts/build.sh -newer "$bin" -print -quit 2>/dev/null) ]]; then
  log "building ./$bin (missing or older than its sources)"
  bash scripts/build.sh "${build_args[@]}"
fi
check_version "./$bin" ""

# 4. dpkg-buildpackage in a staging directory.
work=$(mktemp -d "${TMPDIR:-/tmp}/epoll-echo-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/epoll-echo-$version"
mkdir "$src"
cp -a debian "$src/"
rm -rf "$src/debian/.debhelper" "$src/debian/epoll-echo" "$src/debian/files" "$src"/debian/*.substvars \
  "$src"/debian/*.debhelper.log "$src/debian/debhelper-build-stamp"
cp "$bin" "$src/epoll-echo"   # a snapshot: a rebuild of ./epoll-echo meanwhile can't mix in
in_sum=$(sha256sum <"$src/epoll-echo" | cut -d' ' -f1)
log "dpkg-buildpackage -b -us -uc ${cross[*]} (log: $work/build.log while it runs)"
start=$SECONDS
if ! (cd "$src" && dpkg-buildpackage -b -us -uc "${cross[@]}") >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  die "dpkg-buildpackage failed"
fi
deb="$work/epoll-echo_${version}_${arch}.deb"
[[ -f $deb ]] || die "dpkg-buildpackage produced no $deb"
log "built in $((SECONDS - start)) s"

# 5. Results. Copy to a temporary name first, then rename: readers never see
# a half-written .deb.
mkdir -p dist
put() { cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"; }
put "$deb" "dist/epoll-echo_${version}_${arch}.deb"
put "$deb" "dist/epoll-echo_${arch}.deb"
put "$deb" "epoll-echo_${arch}.deb"
for f in "$work"/epoll-echo_"${version}"_"${arch}".{buildinfo,changes}; do
  [[ -f $f ]] && put "$f" "dist/$(basename "$f")"
done

# 6. lintian: errors and unoverridden warnings fail the build.
if [[ ${EPOLL_ECHO_DEB_SKIP_LINTIAN:-} != 1 ]]; then
  log "lintian"
  if ! lintian --fail-on error,warning "$deb"; then
    die "lintian found errors or warnings (fix them, or override inherent ones in debian/epoll-echo.lintian-overrides with a reason)"
  fi
fi

# 7. The packaged binary is the one that went in, unstripped, and runs.
dpkg-deb -x "$deb" "$work/root"
out_sum=$(sha256sum <"$work/root/usr/bin/epoll-echo" | cut -d' ' -f1)
[[ $out_sum == "$in_sum" ]] || die "packaged /usr/bin/epoll-echo differs from the input binary (stripped?)"
check_version "$work/root/usr/bin/epoll-echo" " (a stripped Bun binary is the bare runtime: it prints Bun's own version, 1.x)"

size=$(stat -c %s "dist/epoll-echo_${version}_${arch}.deb")
log "ok: dist/epoll-echo_${version}_${arch}.deb ($((size / 1024 / 1024)) MiB), dist/epoll-echo_${arch}.deb, ./epoll-echo_${arch}.deb"
