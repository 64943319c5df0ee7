#!/usr/bin/env bash
# The prefill GEMMs on sparse warpgroup MMA (src/spense/runtime/csrc/spense_wgsp.cuh, spense_wgsp_ws.cuh) on
# the device, in one call (no torch build):  OUT=<dir> bash benchmarks/run_wgsp.sh
# 1. builds benchmarks/wgsp_check.cu for sm_90a, with cuBLAS as the dense baseline where its header and
#    library are found (the CUDA toolkit, or the nvidia-cublas wheel next to torch);
# 2. correctness against the register decode kernel: small shapes, a ragged last token tile, cols and
#    rows, an odd number of sparse steps, one step, fewer steps than ring slots (exits on "MISMATCH"),
#    then compute-sanitizer memcheck on one small run (both kernels);
# 3. timing at M = 2048 (MS="..." for others) on the Qwen3-8B and 32B linear shapes at 25 % dense;
# 4. the decode form (launch_wgsd, M <= 64: every K split checked at M = 1, 7, 16, 33, 64 on small shapes, then
#    timed with its weights rotated past L2 at MD="1 16 32 64" on the Qwen3 shapes; a failure here is
#    written down and the rest goes on; SKIP_DECODE=1 leaves it out).
# Everything goes to $OUT/wgsp.txt (one line per run) and $OUT/build.txt.  WGSP_NO_CLUSTER=1 leaves out the
# cluster-of-two variant (wgsp_wsc), e.g. if it fails or hangs.
# TORCH=1 goes on, in the same call, as SpenseLinear runs them (each step under its own timeout, the most
# telling first; about 9 minutes in all): builds the torch extension, runs the GPU tests of tests/test_wgsp.py and
# tests/test_wgsp_stream_k.py (both forms through SpenseLinear), then linear_bench.py with the decode form beside the
# mma.sp kernel at M = 16, 32, 64 ($OUT/l) and prefill_bench.py with the cluster-of-two column ($OUT/p); logs in
# $OUT/torch.txt.
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
R="$OUT/wgsp.txt"
CB=""
for d in "${CUDA_HOME:-/usr/local/cuda}" \
         "$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))' 2>/dev/null)"; do
  lib=$(ls "$d"/lib64/libcublas.so* "$d"/lib/libcublas.so* 2>/dev/null | head -1)
  if [ -n "$d" ] && [ -f "$d/include/cublas_v2.h" ] && [ -n "$lib" ]; then
    CB="-DWGSP_CUBLAS -I$d/include -L$(dirname "$lib") -l:$(basename "$lib") -Xlinker -rpath=$(dirname "$lib")"; break
  fi
done
echo "cublas: ${CB:-not found}" > "$OUT/build.txt"
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc \
  benchmarks/wgsp_check.cu $CB -o /tmp/wgsp_check >> "$OUT/build.txt" 2>&1 || { tail -20 "$OUT/build.txt"; exit 1; }
echo "# $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u +%FT%TZ), commit ${SPENSE_COMMIT:-unknown}, src_digest $(PYTHONPATH=src python3 -m spense.provenance)" > "$R"
B="timeout 60 /tmp/wgsp_check"
P="env WGSP_NO_DECODE=1 timeout 60 /tmp/wgsp_check"  # the prefill runs: the decode form has its own section
if [ "${PROBE:-0}" = 1 ]; then
  # PROBE=1 instead: where the time goes at M = 2048 on two 8B shapes. Timings at 0 / 25 / 50 / 100 % dense
  # columns, then Nsight Compute on the warp-specialized kernel and on cuBLAS ($OUT/ncu_*.txt)
  echo "## probe: dense fraction" >> "$R"
  for s in "4096 4096" "24576 4096"; do
    for d in 0 0.25 0.5 1; do $B $s $d c 2048 20 >> "$R" 2>&1 || echo "rc=$? at $s $d" >> "$R"; done
  done
  SEC="--section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
       --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy"
  for k in "spense_wgsp_ws_kernel" "gemm|nvjet|xmma"; do
    timeout 150 ncu --clock-control none -k "regex:$k" -c 1 $SEC /tmp/wgsp_check 4096 4096 0.25 c 2048 2 \
      > "$OUT/ncu_$(echo "$k" | cut -c1-14 | tr -c 'a-z0-9_\n' _).txt" 2>&1 || echo "ncu rc=$? ($k)" >> "$R"
  done
  echo DONE >> "$R"; tail -12 "$R"; exit 0
fi
echo "## correctness" >> "$R"
for a in "256 1024 0.25 c 64 1" "256 1024 0.25 c 200 1" "256 1024 0.25 r 200 1" "512 2048 0.5 c 130 1" \
         "256 960 0.25 c 300 1" "256 64 0.25 c 200 1" "512 192 0.25 r 130 1" "1024 4096 0.25 r 1000 1"; do
  $P $a >> "$R" 2>&1 || { echo "MISMATCH or failure (rc=$?) at $a" >> "$R"; tail -3 "$R"; exit 1; }
done
echo "## memcheck" >> "$R"
for a in "256 1024 0.25 c 200 1" "256 960 0.25 c 300 1"; do  # the second pads a cluster with a CTA past M
  WGSP_NO_DECODE=1 timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 /tmp/wgsp_check $a >> "$R" 2>&1 \
    || echo "memcheck rc=$? ($a)" >> "$R"
done
DEC=0
if [ "${SKIP_DECODE:-0}" != 1 ]; then
  echo "## decode form: correctness (M <= 64)" >> "$R"
  DEC=1
  for a in "256 1024 0.25 c 1 1" "256 960 0.25 c 7 1" "512 2048 0.5 c 33 1" "1024 4096 0.25 r 64 1" \
           "512 192 0.25 r 16 1"; do
    $B $a >> "$R" 2>&1 || { echo "decode MISMATCH or failure (rc=$?) at $a" >> "$R"; DEC=0; break; }
  done
  [ $DEC = 1 ] && { timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 /tmp/wgsp_check 512 2048 0.5 c 33 1 \
    >> "$R" 2>&1 || echo "memcheck rc=$? (decode)" >> "$R"; }
fi
echo "## timing (25 % dense; dense-equivalent TFLOP/s = 2 M N K / time)" >> "$R"
for M in ${MS:-2048}; do
  for s in "6144 4096" "4096 4096" "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
    for ax in c r; do $P $s 0.25 $ax $M 20 >> "$R" 2>&1 || echo "rc=$? at $s $ax $M" >> "$R"; done
  done
done
if [ $DEC = 1 ]; then
  echo "## decode form timing (25 % dense, weights rotated past L2; the 'decode' lines)" >> "$R"
  for M in ${MD:-1 16 32 64}; do
    for s in "6144 4096" "4096 4096" "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
      $B $s 0.25 c $M 50 >> "$R" 2>&1 || echo "rc=$? at $s c $M (decode)" >> "$R"
    done
  done
fi
if [ "${TORCH:-0}" = 1 ]; then
  export PYTHONPATH=src PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/spense_ext}
  T="$OUT/torch.txt"; SH=8B.gate_up,8B.down,32B.gate_up,32B.down
  step() { local t=$1; shift; echo "===== $* (timeout $t s)" >> "$T"; timeout -k 5 "$t" "$@" >> "$T" 2>&1
           echo "rc=$? $*" >> "$R"; }
  step 300 python3 -c "from spense.runtime import mmasp; mmasp.load_extension(); print('arch', mmasp._EXT_ARCH)"
  step 120 python3 -m pytest -q -x -m gpu tests/test_wgsp.py tests/test_wgsp_stream_k.py
  step 150 python3 benchmarks/linear_bench.py --out "$OUT/l" --ms 16,32,64 --ratios 0.25 --axes cols \
    --backends dense,mmasp,wgsd --cfgs 1x4,1x8,2x4,2x8 --shapes $SH
  step 150 python3 benchmarks/prefill_bench.py --out "$OUT/p" --dtypes bf16 --ms 512,2048,8192 --shapes $SH
fi
echo DONE >> "$R"
tail -14 "$R"
