#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (and `llama-bench`, `llama-batched-bench`) from the llama.cpp
# tree vendored in the llama-cpp-python 0.3.36 sdist on PyPI, and cache the binaries under
# $ALIGNDIFF_TOOLS (default ~/.cache/aligndiff/tools/llama.cpp-<sdist sha256 prefix>/bin).
# The tests that need a real OpenAI-compatible server find it through $ALIGNDIFF_LLAMA_SERVER or
# that cache. Prints the bin folder. Needs cmake and a C++ compiler (installed by .ci/run).
set -euo pipefail

version=0.3.36
sdist_sha=""
tools="${ALIGNDIFF_TOOLS:-$HOME/.cache/aligndiff/tools}"
mkdir -p "$tools"
py="$(command -v python3 || command -v python)"

sdist_dir="$tools/sdist"
mkdir -p "$sdist_dir"
sdist="$(ls "$sdist_dir"/llama_cpp_python-$version.tar.gz 2>/dev/null || true)"
if [ -z "$sdist" ]; then
  echo "fetching the llama-cpp-python $version sdist ..." >&2
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check \
    --no-binary llama-cpp-python -d "$sdist_dir" "llama-cpp-python==$version" >&2
  sdist="$sdist_dir/llama_cpp_python-$version.tar.gz"
fi
sdist_sha="$(sha256sum "$sdist" | cut -c1-16)"
# Built for this CPU (-DGGML_NATIVE=ON): the cache key holds the CPU's features too, so a cache
# carried to another machine is rebuilt rather than dying of an illegal instruction.
cpu="$( (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) | sha256sum | cut -c1-8)"
prefix="$tools/llama.cpp-$sdist_sha-$cpu"
bin="$prefix/bin"
if [ -x "$bin/llama-server" ] && [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-batched-bench" ]; then
  echo "$bin"
  exit 0
fi

command -v cmake >/dev/null || { echo "error: cmake is needed to build llama-server (apt-get install cmake)" >&2; exit 1; }
work="$prefix/src"
rm -rf "$work"
mkdir -p "$work"
tar -xzf "$sdist" -C "$work"
tree="$work/llama_cpp_python-$version/vendor/llama.cpp"
[ -f "$tree/CMakeLists.txt" ] || { echo "error: $sdist has no vendor/llama.cpp/CMakeLists.txt" >&2; exit 1; }

jobs="$(nproc)"
echo "building llama-server from $tree with $jobs jobs (10-15 minutes on 2 cores) ..." >&2
cmake -S "$tree" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$work/build" --config Release -j "$jobs" \
  --target llama-server llama-bench llama-batched-bench >&2
mkdir -p "$bin.part"
for t in llama-server llama-bench llama-batched-bench; do
  cp "$work/build/bin/$t" "$bin.part/"
done
rm -rf "$bin"
mv "$bin.part" "$bin"
rm -rf "$work"
echo "$bin"
