#!/usr/bin/env bash
# aligndiff's engine against llama.cpp on the same GGUF files, side by side in one run.
#
# llama.cpp is built from the tree vendored in the llama-cpp-python 0.3.36 sdist
# (scripts/build-llama-server.sh, cached), aligndiff in release mode. For each file:
#   llama-bench          -t T -p 128 -n 64            prompt and batch-1 decode tokens/s
#   llama-batched-bench  -t T -npp 128 -ntg 64 -npl 1,16   aggregate decode of 16 sequences
#   aligndiff bench      --batch 1,16 --prompt-tokens 128 --new-tokens 64
# and prints a Markdown table of aligndiff ÷ llama.cpp per file and figure, with the targets of
# docs/ENGINE.md. Machines differ from day to day: compare the ratios, not absolute figures.
#
# Usage: scripts/bench-vs-llamacpp.sh [model.gguf ...]   (default: the three demo models)
# Env:   THREADS (default: all cores), REPS (llama-bench repetitions, default 3),
#        OUT (folder for the raw JSON and the table, default out/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aligndiff/target}"
threads="${THREADS:-$(nproc)}"
reps="${REPS:-3}"
out="${OUT:-out/bench}"
mkdir -p "$out"

llama_bin="$(scripts/build-llama-server.sh)"
if [ $# -gt 0 ]; then
  files=("$@")
else
  models="$(scripts/fetch-demo-models.sh)"
  files=(
    "$models/SmolLM2-135M-Instruct.Q4_1.gguf"
    "$models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    "$models/gemma-3-270m-q4_k_m.gguf"
  )
fi
cargo build --release --no-default-features --bin aligndiff >&2
aligndiff="$CARGO_TARGET_DIR/release/aligndiff"

export RAYON_NUM_THREADS="$threads"
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "error: no model file $f" >&2; exit 2; }
  name="$(basename "$f" .gguf)"
  echo "== $name ($threads threads)" >&2
  "$llama_bin/llama-bench" -m "$f" -t "$threads" -p 128 -n 64 -r "$reps" -o json \
    > "$out/$name.llama-bench.json" 2>/dev/null
  "$llama_bin/llama-batched-bench" -m "$f" -t "$threads" -tb "$threads" -c 4096 \
    -npp 128 -ntg 64 -npl 1,16 --output-format jsonl 2>/dev/null \
    | grep '^{' > "$out/$name.llama-batched-bench.jsonl"
  "$aligndiff" bench --model "$f" --batch 1,16 --prompt-tokens 128 --new-tokens 64 --json \
    > "$out/$name.aligndiff.json"
  stat -c %s "$f" > "$out/$name.bytes"
done

python3 - "$out" "$threads" "${files[@]}" <<'EOF' | tee "$out/bench-vs-llamacpp.md"
import json, os, sys
out, threads, files = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"| file | figure | llama.cpp | aligndiff | ratio | target |")
print(f"|---|---|---|---|---|---|")
for f in files:
    name = os.path.basename(f)[:-len(".gguf")]
    lb = json.load(open(f"{out}/{name}.llama-bench.json"))
    pp = next(r["avg_ts"] for r in lb if r["n_prompt"] > 0 and r["n_gen"] == 0)
    tg = next(r["avg_ts"] for r in lb if r["n_gen"] > 0 and r["n_prompt"] == 0)
    bb = [json.loads(l) for l in open(f"{out}/{name}.llama-batched-bench.jsonl")]
    tg16 = next(r["speed_tg"] for r in bb if r["pl"] == 16)
    ad = json.load(open(f"{out}/{name}.aligndiff.json"))
    by = {b["batch"]: b for b in ad["batches"]}
    size_mib = int(open(f"{out}/{name}.bytes").read()) / 2**20
    rows = [
        ("prompt tok/s (128)", pp, by[1]["prefill_tokens_per_s"], "≥ 0.8"),
        ("decode tok/s, batch 1", tg, by[1]["decode_tokens_per_s"], "≥ 1.0"),
        ("decode tok/s, 16 sequences", tg16, by[16]["decode_tokens_per_s"], "≥ 1.0"),
    ]
    for figure, theirs, ours, target in rows:
        print(f"| {name} | {figure} | {theirs:.0f} | {ours:.0f} | {ours / theirs:.2f} | {target} |")
    peak = ad["peak_rss_after_load_mib"]
    print(f"| {name} | peak RSS after load (MiB; file {size_mib:.0f}) | – | {peak:.0f} | "
          f"{peak / size_mib:.2f}× file | ≤ 1.5× file + KV |")
print(f"\n{threads} threads; `llama-bench -p 128 -n 64`, `llama-batched-bench -npp 128 -ntg 64 -npl 1,16`, "
      f"`aligndiff bench --batch 1,16 --prompt-tokens 128 --new-tokens 64`.")
EOF
