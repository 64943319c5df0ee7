#!/usr/bin/env bash
# One device call of the v4 runtime work (docs/runtime.md §7).  Usage (device machine, repo root):
#   SPENSE_COMMIT=<sha> STAGE=1 bash benchmarks/run_linear_v4.sh   # build || FP8 dense baseline bench; checks; memcheck
#   SPENSE_COMMIT=<sha> STAGE=2 SPENSE_MMASP_SO=<so> bash benchmarks/run_linear_v4.sh   # Spense d=0.25 vs baselines
# Everything lands in $OUT (logs, JSON, markdown, the built extension).
set -u
export PYTHONPATH=src
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/spense_ext}
OUT=${OUT:-out}; mkdir -p "$OUT"
T0=$(date +%s); BUDGET=${BUDGET:-300}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
if [ "${STAGE:-1}" = 1 ]; then
  ( python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('$OUT/mmasp_ext.so')" \
      > "$OUT/build.log" 2>&1; echo "build rc=$?" >> "$OUT/build.log" ) &
  BPID=$!
  timeout $(( $(left) - 150 )) python benchmarks/linear_bench.py --out "$OUT" --tag _v4dense \
      --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.qkv,32B.o,32B.gate_up,32B.down --ms 1,4,8,16,32,64,2048 \
      --dtypes fp8 --axes cols --ratios 0 --backends dense > "$OUT/linear_bench_v4dense.log" 2>&1
  echo "bench rc=$?" >> "$OUT/linear_bench_v4dense.log"
  wait $BPID
  export SPENSE_MMASP_SO="$OUT/mmasp_ext.so"
  timeout 45 python -m pytest -q -m gpu tests/test_kernels.py tests/test_fp8.py -p no:cacheprovider \
      > "$OUT/pytest_gpu.log" 2>&1; echo "pytest rc=$?" >> "$OUT/pytest_gpu.log"
  timeout 40 python benchmarks/linear_bench.py --out "$OUT" --tag _v4check --check-only \
      --shapes 8B.gate_up,8B.down --dtypes bf16,fp8 --ratios 0.25 --axes cols,rows --backends mmasp,triton,cusparselt \
      > "$OUT/linear_bench_v4check.log" 2>&1; echo "check rc=$?" >> "$OUT/linear_bench_v4check.log"
  S=$(left); [ "$S" -gt 15 ] && timeout $S compute-sanitizer --tool memcheck --print-limit 20 \
      python benchmarks/sanitize_kernels.py > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?" >> "$OUT/memcheck.log"
else
  ( python -c "from spense.runtime import mmasp; mmasp.load_extension()" > "$OUT/build.log" 2>&1
    echo "build rc=$?" >> "$OUT/build.log" ) &
  BPID=$!
  timeout 120 python benchmarks/linear_bench.py --out "$OUT" --tag _v4dense2 \
      --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.qkv,32B.o,32B.gate_up,32B.down --ms 1,4,8,16,32,64 \
      --dtypes fp8 --axes cols --ratios 0 --backends dense --fp8-compiled-ms "" --fp8-extra > "$OUT/linear_bench_v4dense2.log" 2>&1
  echo "bench rc=$?" >> "$OUT/linear_bench_v4dense2.log"
  wait $BPID
  timeout $(( $(left) - 75 )) python benchmarks/linear_bench.py --out "$OUT" --tag _v4 \
      --shapes 8B.gate_up,8B.down,32B.gate_up,32B.down --ms 1,4,8,16,32,64,2048 --dtypes bf16,fp8 --axes cols \
      --ratios 0.25 --backends dense,cusparselt,mmasp --cfgs 1x4,1x8,2x8,1x16 --fp8-compiled-ms "" > "$OUT/linear_bench_v4.log" 2>&1
  echo "bench rc=$?" >> "$OUT/linear_bench_v4.log"
  timeout 35 python -m pytest -q -m gpu tests/test_kernels.py tests/test_fp8.py -p no:cacheprovider \
      > "$OUT/pytest_gpu.log" 2>&1; echo "pytest rc=$?" >> "$OUT/pytest_gpu.log"
  S=$(left); [ "$S" -gt 15 ] && timeout $S compute-sanitizer --tool memcheck --print-limit 20 \
      python benchmarks/sanitize_kernels.py > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?" >> "$OUT/memcheck.log"
fi
echo "total $(( $(date +%s) - T0 )) s" >> "$OUT/gpu.txt"
# the device tool returns at most a few files: pack everything (but the extension) into one archive
(cd "$OUT" && tar czf /tmp/v4_all.tgz --exclude='*.so' . ) && find "$OUT" -type f -delete && mv /tmp/v4_all.tgz "$OUT/"
