#!/usr/bin/env bash
# One command for a GPU machine (H100/H200, CUDA toolkit, CMake, pybind11,
# scikit-build-core, NumPy, CuPy, PyTorch; no package registry): build ember into a
# folder, run the whole test suite (the device fixture adds "cuda" to every test), then
# the GPU benchmarks. Fixed sizes, so it finishes in a few minutes.
#   bash bench/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/ember-gpu}}
mkdir -p "$OUT"
TARGET=$(mktemp -d)/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

echo "== build"
start=$(date +%s)
python3 -m pip install --no-build-isolation --no-deps --target "$TARGET" . > "$OUT/build.log" 2>&1 \
  || { tail -50 "$OUT/build.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
export PYTHONPATH="$TARGET"
python3 -c "import ember; assert ember.cuda.is_available(), ember.cuda.why_unavailable(); print(ember.cuda.get_device_name())"

echo "== tests (cpu and cuda)"
python3 -m pytest -q -x tests 2>&1 | tee "$OUT/tests.log" | tail -15

echo "== benchmarks"
python3 bench/bench_gpu.py 2>&1 | tee "$OUT/bench.txt"
