#!/usr/bin/env bash
# Every check, in the order a reviewer would run them: format, lints, the headless (no GUI)
# build, then the whole test suite (unit tests, tiny in-code models, the real demo models).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aligndiff/target}"

scripts/fetch-demo-models.sh >/dev/null
# The serving tests start a real llama.cpp server: build it once (10-20 minutes on 2 cores),
# cached by the hash of its source under ~/.cache/aligndiff/tools.
if [ "${ALIGNDIFF_SKIP_SERVER_TESTS:-}" != 1 ] && [ -z "${ALIGNDIFF_LLAMA_SERVER:-}" ]; then
  ALIGNDIFF_LLAMA_SERVER="$(scripts/build-llama-server.sh)/llama-server"
  export ALIGNDIFF_LLAMA_SERVER
fi

echo "== rustfmt" >&2
cargo fmt --all -- --check
echo "== clippy" >&2
cargo clippy --all-targets -- -D warnings
echo "== headless build (no GUI)" >&2
cargo build --no-default-features
cargo clippy --no-default-features --lib --bins -- -D warnings
echo "== tests" >&2
cargo test
