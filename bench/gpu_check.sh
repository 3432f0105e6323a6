#!/usr/bin/env bash
# One command for a GPU machine (H100/H200, CUDA toolkit, CMake, pybind11,
# scikit-build-core, NumPy, CuPy, PyTorch; no package registry): build ember into a
# folder, run the whole test suite (the device fixture adds "cuda" to every test), build
# and run the SGEMM harness (bench/cuda_sgemm), then the GPU benchmarks. Fixed sizes and
# a timeout per step and one for the whole run (under 6 minutes), so a hang cannot eat the budget.
#   bash bench/gpu_check.sh [OUT_DIR]        logs go to OUT_DIR (default $OUT or /tmp/ember-gpu)
# Exit status: 0 when every step passed, else the number of failed steps; 3 at once when
# there is no usable GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/ember-gpu}}
mkdir -p "$OUT"
WORK=$(mktemp -d)
TARGET=$WORK/site
failed=0
declare -a SUMMARY
DEADLINE=$(( $(date +%s) + 350 ))  # the whole run, whatever each step's own limit

# step NAME SECONDS LOG CMD...: run CMD under a timeout, log everything, record the outcome.
step() {
  local name=$1 secs=$2 log=$3
  shift 3
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -lt 10 ]; then
    SUMMARY+=("$(printf '%-14s SKIPPED  (out of the time budget)' "$name")")
    failed=$((failed + 1))
    return 0
  fi
  [ "$secs" -gt "$left" ] && secs=$left
  echo "== $name (limit ${secs}s, log $log)"
  local start rc
  start=$(date +%s)
  timeout --kill-after=10 "$secs" "$@" > "$OUT/$log" 2>&1
  rc=$?
  local took=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    SUMMARY+=("$(printf '%-14s ok      %4ds' "$name" "$took")")
  else
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && rc="timeout"
    SUMMARY+=("$(printf '%-14s FAILED  %4ds  (%s, see %s)' "$name" "$took" "$rc" "$log")")
    failed=$((failed + 1))
    tail -30 "$OUT/$log"
  fi
  return 0
}

if ! timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1; then
  echo "gpu_check: no usable GPU (nvidia-smi failed):" >&2
  cat "$OUT/gpu.txt" >&2
  exit 3
fi
cat "$OUT/gpu.txt"

step build 150 build.log python3 -m pip install --no-build-isolation --no-deps --target "$TARGET" .
export PYTHONPATH="$TARGET"
step cuda-available 30 cuda.log python3 -c \
  "import ember; assert ember.cuda.is_available(), ember.cuda.why_unavailable(); print(ember.cuda.get_device_name())"
# --maxfail, not -x: a first GPU run should show as many distinct failures as it can.
step tests 150 tests.log python3 -m pytest -q -rf --maxfail=30 -p no:cacheprovider tests
grep -E "^FAILED|passed|failed" "$OUT/tests.log" | tail -35

# The harness needs cuBLAS: the toolkit's, else the one a pip wheel (PyTorch's) ships.
CUBLAS_FLAGS=(-lcublas)
if ! echo '#include <cublas_v2.h>' | nvcc -x cu -E - > /dev/null 2>&1; then
  wheel=$(python3 -c "import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))" 2>/dev/null || true)
  [ -n "$wheel" ] && CUBLAS_FLAGS=(-I"$wheel/include" -L"$wheel/lib" -Xlinker -rpath="$wheel/lib" -l:libcublas.so.12)
fi
step sgemm-build 60 sgemm_build.log \
  nvcc -O3 -std=c++17 -arch=sm_90 -o "$WORK/sgemm" bench/cuda_sgemm/sgemm.cu "${CUBLAS_FLAGS[@]}"
if [ -x "$WORK/sgemm" ]; then
  step sgemm 60 sgemm.txt "$WORK/sgemm" -n 1024,2048,4096,8192
  cat "$OUT/sgemm.txt"
fi
step bench-gpu 45 bench.txt python3 bench/bench_gpu.py
cat "$OUT/bench.txt"

echo
echo "== summary ($(cat "$OUT/gpu.txt"))"
printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
rm -rf "$WORK"
exit $failed
