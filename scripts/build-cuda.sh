#!/usr/bin/env bash
# Build aligndiff with `--features cuda` on a machine with no GPU and no CUDA toolkit, so the GPU
# path cannot rot unseen (CI runs this). The toolkit comes from NVIDIA's CUDA 13.0 wheels on PyPI
# (nvcc, headers, and the cuBLAS/cuRAND/NVRTC/runtime libraries), pinned to 13.0 to match the
# driver of the GPU machines this is run on: unpinned, nvidia-nvvm and nvidia-cuda-crt arrive at
# 13.5 and ptxas 13.0 rejects the PTX they produce. The driver library (libcuda) is not on PyPI:
# a stub with the entry points candle's CUDA bindings use lets the binary link; on a machine with
# a GPU the real driver's libcuda.so.1 is loaded instead (the stub carries that soname).
#
# Usage: scripts/build-cuda.sh [--smoke]
#   Prints the path of the stripped binary (release: ~63 MiB, small enough to carry to a GPU
#   machine). --smoke also runs it on the CPU here (with
#   the stub driver, which reports "no CUDA device") to show the CUDA build still answers on CPU
#   and fails clearly on `--device cuda`.
# Env: CUDA_COMPUTE_CAP (default 90, the H200), ALIGNDIFF_TOOLS (cache, default
#      ~/.cache/aligndiff/tools), CARGO_TARGET_DIR (default ~/.cache/aligndiff/target-cuda),
#      CUDA_PROFILE (release, the default, or dev: what CI builds, sharing the test build's
#      dependencies so only the CUDA crates compile again).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${ALIGNDIFF_TOOLS:-$HOME/.cache/aligndiff/tools}"
cuda="$tools/cuda-13.0"
root="$cuda/nvidia/cu13"
pins=(
  nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
  nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
)
if [ ! -f "$cuda/.complete" ]; then
  echo "installing the CUDA 13.0 wheels into $cuda ..." >&2
  rm -rf "$cuda.part"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$cuda.part" "${pins[@]}" >&2
  rm -rf "$cuda"
  mv "$cuda.part" "$cuda"
  touch "$cuda/.complete"
fi
[ -x "$root/bin/nvcc" ] || { echo "error: no nvcc at $root/bin/nvcc" >&2; exit 1; }

# The linker wants unversioned names; the wheels ship only the versioned libraries.
link="$cuda/link"
mkdir -p "$link"
for pair in cublas:libcublas.so.13 cublasLt:libcublasLt.so.13 curand:libcurand.so.10 \
  nvrtc:libnvrtc.so.13 cudart:libcudart.so.13; do
  ln -sf "$root/lib/${pair#*:}" "$link/lib${pair%%:*}.so"
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aligndiff/target-cuda}"
cargo fetch --quiet
cudarc="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | head -1)"
[ -d "$cudarc" ] || { echo "error: cudarc's source is not in the cargo registry" >&2; exit 1; }
if [ ! -f "$link/libcuda.so" ] || [ "$cudarc/src/driver/sys/mod.rs" -nt "$link/libcuda.so" ]; then
  # Every driver entry point the bindings declare, each returning CUDA_ERROR_NO_DEVICE (100).
  grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys/mod.rs" \
    | sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u \
    | awk '{ printf "int %s(void) { return 100; }\n", $1 }' > "$link/cuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/cuda_stub.c"
  ln -sf libcuda.so "$link/libcuda.so.1"
fi

export PATH="$root/bin:$PATH"
export CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$link${LIBRARY_PATH:+:$LIBRARY_PATH}"
echo "building aligndiff --features cuda (compute capability $CUDA_COMPUTE_CAP; ~20 minutes cold on 2 cores) ..." >&2
profile="${CUDA_PROFILE:-release}"
cargo build --profile "$profile" --no-default-features --features cuda --bin aligndiff >&2
case "$profile" in dev) bin="$CARGO_TARGET_DIR/debug/aligndiff" ;; *) bin="$CARGO_TARGET_DIR/$profile/aligndiff" ;; esac
strip -o "$bin.stripped" "$bin"

if [ "${1:-}" = "--smoke" ]; then
  models="$(scripts/fetch-demo-models.sh 2>/dev/null)"
  export LD_LIBRARY_PATH="$link:$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  out="$("$bin.stripped" generate --model "$models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" \
    --prompt "What is the capital of France? Answer in one word." --max-new-tokens 8 --device cpu)"
  echo "cuda build on cpu: $out" >&2
  case "$out" in *Paris*) ;; *) echo "error: the CUDA build answered wrongly on CPU" >&2; exit 1 ;; esac
  if err="$("$bin.stripped" generate --model "$models/SmolLM2-135M-Instruct.Q4_1.gguf" \
    --prompt "Hi" --max-new-tokens 2 --device cuda 2>&1)"; then
    echo "error: --device cuda succeeded with the stub driver" >&2; exit 1
  fi
  echo "cuda build on a machine without a GPU: $err" >&2
  case "$err" in *"cannot open CUDA device 0"*) ;; *) echo "error: unclear error without a GPU" >&2; exit 1 ;; esac
fi
echo "$bin.stripped"
