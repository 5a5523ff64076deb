#!/usr/bin/env bash
# Compile the standalone executable ./epoll-echo (or $1) from src/main.ts.
# --bytecode needs --format=esm (without it the build "succeeds" and the
# binary dies at start), so the build ends by running the result once.
# Extra arguments after the output name go to bun build (e.g. --target=bun-linux-x64-musl).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-./epoll-echo}"
shift || true
bun build src/main.ts --compile --bytecode --format=esm --minify-syntax --minify-whitespace \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --outfile "$out" "$@" >/dev/null
if [[ "$*" != *--target=* ]]; then
  "$out" --version >/dev/null || { echo "build: $out does not run" >&2; exit 1; }
fi
echo "built $out ($(du -h "$out" | cut -f1))"
