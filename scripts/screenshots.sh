#!/usr/bin/env bash
# Regenerate the README's screenshots of the workbench: run the demo audit (answers already in
# the store are reused), then drive the real app with egui_kittest (examples/screenshots.rs) and
# render each main view with wgpu (Mesa's software rasterizer when there is no GPU) into
# screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aligndiff/target}"
scripts/demo.sh
cargo run --example screenshots
ls -l screenshots/
