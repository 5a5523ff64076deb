#!/usr/bin/env bash
# Compile a standalone executable with the product's flags:
#
#   bash scripts/build.sh [--entry FILE] [OUT] [bun build args...]
#
# Without --entry: ./epoll-echo (or OUT) from src/main.ts. The benchmark
# compiles its baselines with --entry, so every binary it compares is built
# the same way. Extra arguments after OUT go to bun build (e.g.
# --target=bun-linux-x64-musl).
# --bytecode needs --format=esm (without it the build "succeeds" and the
# binary dies at start), so a build of epoll-echo ends by running the result
# once (--version; other entries need not know that flag).
#
#   bash scripts/build.sh arm64   cross-compiles ./epoll-echo-arm64
#                                 (--target=bun-linux-arm64; the arm64 runtime
#                                 comes from the npm registry) and runs it once
#                                 under qemu-aarch64 when qemu-user and
#                                 libc6-arm64-cross are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
entry=src/main.ts
if [[ ${1:-} == --entry ]]; then
  [[ $# -ge 2 ]] || { echo "build: --entry needs a file" >&2; exit 2; }
  entry="$2"
  shift 2
fi
if [[ ${1:-} == arm64 ]]; then
  set -- ./epoll-echo-arm64 --target=bun-linux-arm64
fi
out="${1:-./epoll-echo}"
shift || true
# --splitting: the code loaded only by `await import()` (the probe, --help,
# the metrics listener) goes into chunks of its own inside the executable, so
# the server's start no longer loads it: "starting" is logged ~0.8 ms sooner
# (median of 11 starts; docs/benchmarks.md, "Startup").
# --minify-identifiers: a start pays for the source text of every function it
# loads and runs, so shorter names buy ~0.5 ms of startup (docs/benchmarks.md,
# "Startup": "Shorter source").
bun build "$entry" --compile --splitting --bytecode --format=esm --minify-syntax --minify-whitespace --minify-identifiers \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --outfile "$out" "$@" >/dev/null
if [[ "$entry" != src/main.ts ]]; then
  : # a baseline: no --version to run it with
elif [[ "$*" != *--target=* ]]; then
  "$out" --version >/dev/null || { echo "build: $out does not run" >&2; exit 1; }
elif [[ "$*" == *--target=bun-linux-arm64 ]] && command -v qemu-aarch64 >/dev/null && [[ -d /usr/aarch64-linux-gnu ]]; then
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out" --version >/dev/null || { echo "build: $out does not run under qemu-aarch64" >&2; exit 1; }
fi
echo "built $out ($(du -h "$out" | cut -f1))"
