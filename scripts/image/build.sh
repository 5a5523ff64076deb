#!/usr/bin/env bash
# Build the OCI image of epoll-echo (`bun run image`):
#   localhost/epoll-echo:<version> and localhost/epoll-echo:latest, and
#   dist/epoll-echo-image.tar (docker-archive: `podman load` and `docker load`
#   accept it, and it keeps the HEALTHCHECK).
#
#   1. builds ./epoll-echo (scripts/build.sh)
#   2. stages it with the loader and the libraries ldd lists in a temporary
#      build context (rootfs/ mirrors their paths)
#   3. podman build --format docker -f scripts/image/Containerfile
#   4. podman save --format docker-archive -m (both tags)
#
# podman runs with --runtime runc --cgroup-manager=cgroupfs
# --events-backend=file (crun refuses hybrid v1/v2 cgroups); override with
# EPOLL_ECHO_PODMAN="podman ...".
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }
read -r -a podman <<<"${EPOLL_ECHO_PODMAN:-podman --runtime runc --cgroup-manager=cgroupfs --events-backend=file}"
command -v "${podman[0]}" >/dev/null || die "${podman[0]} not found (apt-get install podman runc)"

version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' package.json | head -n1)
[[ -n $version ]] || die "no \"version\" in package.json"
image=localhost/epoll-echo

# 1. The binary.
bash scripts/build.sh >&2

# 2. Build context: rootfs/usr/bin/epoll-echo plus the shared objects at
# their own paths (the loader at the path the ELF header names).
ctx=$(mktemp -d "${TMPDIR:-/tmp}/epoll-echo-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
install -D -m 0755 epoll-echo "$ctx/rootfs/usr/bin/epoll-echo"
libs=$(ldd epoll-echo | grep -o '/[^ ]*' | sort -u)
[[ -n $libs ]] || die "ldd listed no libraries"
for lib in $libs; do
  install -D -m 0755 "$(readlink -f "$lib")" "$ctx/rootfs$lib"
done
log "context: usr/bin/epoll-echo + $(echo "$libs" | tr '\n' ' ')"

# 3. Build (docker format: keeps HEALTHCHECK).
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source=$(git remote get-url origin 2>/dev/null || echo unknown)
start=$SECONDS
"${podman[@]}" build --format docker --layers=false -f scripts/image/Containerfile \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$source" \
  -t "$image:$version" -t "$image:latest" "$ctx" >&2
log "built $image:$version and :latest in $((SECONDS - start)) s"

# 4. The archive, written under a temporary name and renamed.
mkdir -p dist
rm -f dist/epoll-echo-image.tar.tmp
"${podman[@]}" save --format docker-archive -m -o dist/epoll-echo-image.tar.tmp "$image:$version" "$image:latest" >&2
mv -f dist/epoll-echo-image.tar.tmp dist/epoll-echo-image.tar
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image:$version")
log "ok: $image:$version ($((size / 1000000)) MB), dist/epoll-echo-image.tar ($(($(stat -c %s dist/epoll-echo-image.tar) / 1000000)) MB)"
