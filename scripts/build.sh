#!/usr/bin/env bash
# Compile the standalone executable ./epoll-echo (or $1) from src/main.ts.
# --bytecode needs --format=esm (without it the build "succeeds" and the
# binary dies at start), so the build ends by running the result once.
# Extra arguments after the output name go to bun build (e.g. --target=bun-linux-x64-musl).
#
#   bash scripts/build.sh arm64   cross-compiles ./epoll-echo-arm64
#                                 (--target=bun-linux-arm64; the arm64 runtime
#                                 comes from the npm registry) and runs it once
#                                 under qemu-aarch64 when qemu-user and
#                                 libc6-arm64-cross are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == arm64 ]]; then
  set -- ./epoll-echo-arm64 --target=bun-linux-arm64
fi
out="${1:-./epoll-echo}"
shift || true
bun build src/main.ts --compile --bytecode --format=esm --minify-syntax --minify-whitespace \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --outfile "$out" "$@" >/dev/null
if [[ "$*" != *--target=* ]]; then
  "$out" --version >/dev/null || { echo "build: $out does not run" >&2; exit 1; }
elif [[ "$*" == *--target=bun-linux-arm64 ]] && command -v qemu-aarch64 >/dev/null && [[ -d /usr/aarch64-linux-gnu ]]; then
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out" --version >/dev/null || { echo "build: $out does not run under qemu-aarch64" >&2; exit 1; }
fi
echo "built $out ($(du -h "$out" | cut -f1))"
