#!/usr/bin/env bash
# Every check, in the order a reviewer would run them: format, lints, the headless (no GUI)
# build, then the whole test suite (unit tests, tiny in-code models, the real demo models).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aligndiff/target}"

scripts/fetch-demo-models.sh >/dev/null

echo "== rustfmt" >&2
cargo fmt --all -- --check
echo "== clippy" >&2
cargo clippy --all-targets -- -D warnings
echo "== headless build (no GUI)" >&2
cargo build --no-default-features
cargo clippy --no-default-features --lib --bins -- -D warnings
echo "== tests" >&2
cargo test
