#!/usr/bin/env bash
# The bulk-copy mma.sp kernel against the register kernel, on the device, in one call (no torch build):
#   OUT=<dir> bash benchmarks/run_bulk_ab.sh
# 1. builds benchmarks/mmasp_bulk_check.cu (nvcc, sm_90);
# 2. correctness: small shapes, rings of 1..5 slots, cols/rows, bf16/FP8, every M bucket (exits on a
#    mismatch: "MISMATCH");
# 3. compute-sanitizer memcheck on two small runs (if the runtime allows it);
# 4. timing on the Qwen3-8B / 32B linear shapes at 25 % dense (cols), M = 1, 8 and 16, four configs
#    (each line: the register kernel with x read directly and through x_fragments, the bulk kernel, the
#    register kernel with twice the steps in flight, reg_xf_u2, software-pipelined, reg_xf_pf, the
#    shared-x kernel, xs, whose CTAs hold `warps` row tiles, and since e2e v13 the kernel before its x
#    ring, reg_xf_x0, a deeper ring, reg_xf_x4, warps split by kind of step, reg_xf_roles, and the
#    warps' sums in order, reg_xf_det, and since e2e v14 x_perm instead of xf, reg_xp, and since 2026-12-02 the
#    extension's kernel with its prologue reordered, early1 / early3 (early7 / early9 ran once and were removed), and with K split over 2
#    and 3 CTAs, reg_ks2 / reg_ks3, and since the twelfth stop e4m3 at M <= 16 and the line's RT (1, 2 or 4) in order and
#    split, det_h_rt / ks2_rt / ks3_rt, and since the fifteenth stop the DET kernel with no round load behind a branch,
#    clamp / det_h_rt_c, and since the sixteenth early3 with clamp's rounds, early3c: benchmarks/mmasp_bulk_check.cu); then
#    the first config again with programmatic dependent launch (pdl=1); the fp8 line at 4 and 8 warps;
# 5. with PYTEST=1, the GPU tests of the kernels, the runtime, the engine, the decode attention and the
#    prefill unpack (-m gpu).
# Everything goes to $OUT/bulk_ab.txt (one line per run), $OUT/build.txt and $OUT/pytest.txt.
# TIMING_MS="1 16 32 64": the timed M values (default 1 8 16; QUICK: 1 16).
# SWEEP=1: instead, the sweep over N for benchmarks/fixed_cost_fit.py ($OUT/fixed_cost.md).
# TRACE=1: instead, one launch's timeline of the register kernel's CTAs per shape ($OUT/trace.txt; below).
# L2PROBE=1: instead, Nsight Compute's DRAM / L2 / L1 counters of e4m3 at M = 1, 8, 16 and RT = 1, 2, 4, then the same
# cases timed ($OUT/l2probe.txt, $OUT/bulk_ab.txt; below).
# QUICK=1: a first look in ~2 min (fewer correctness cases, no memcheck, the four Qwen3-8B shapes,
# M = 1 and 16, two configs); every harness run is capped at 60 s (a hung kernel shows as rc 124).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
B="timeout 60 /tmp/mmasp_bulk_check"
QUICK=${QUICK:-0}
if [ -n "${PREBUILT:-}" ]; then
  # PREBUILT=<dir>: the harness built beforehand with the same nvcc lines (mmasp_bulk_check, and mmasp_trace with
  # -DSPENSE_MMASP_TRACE), e.g. here with nvcc 13 and carried, so that the device only runs
  cp "$PREBUILT/mmasp_bulk_check" /tmp/mmasp_bulk_check \
    && { [ ! -f "$PREBUILT/mmasp_trace" ] || cp "$PREBUILT/mmasp_trace" /tmp/mmasp_trace; } \
    && echo "prebuilt from $PREBUILT" > "$OUT/build.txt" || exit 1
else
  nvcc -std=c++17 -O3 -gencode=arch=compute_90,code=sm_90 --use_fast_math -Xptxas -v \
    -I src/spense/runtime/csrc benchmarks/mmasp_bulk_check.cu -o /tmp/mmasp_bulk_check > "$OUT/build.txt" 2>&1 || { tail -20 "$OUT/build.txt"; exit 1; }
fi
R="$OUT/bulk_ab.txt"
echo "# $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u +%FT%TZ), commit ${SPENSE_COMMIT:-unknown}, src_digest $(PYTHONPATH=src python3 -m spense.provenance)" > "$R"
if [ "${PROBE:-0}" = 1 ]; then
  # PROBE=1 instead of the A/B: compute-sanitizer memcheck over every kernel the harness runs (register,
  # bulk, shared-x whole and split) at NT = 1, 4 and 8, bf16 and e4m3, cols and rows; then Nsight
  # Compute's counters for the first two register-kernel launches (x direct, x fragments) of the 8B o
  # and gate_up shapes at M = 1, 4 warps ($OUT/ncu_*.txt)
  echo "## memcheck" >> "$R"
  for a in "128 1024 0.25 c 0 1 1 8 2 1 1" "128 1024 0.25 c 0 20 1 4 2 1 1" "256 2304 0.25 r 1 40 1 4 2 1 1" \
           "256 2304 0.25 c 1 64 1 8 2 1 1"; do
    echo "args $a" >> "$R"
    timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 /tmp/mmasp_bulk_check $a >> "$R" 2>&1 || echo "memcheck rc=$?" >> "$R"
  done
  for shape in "4096 4096" "24576 4096"; do
    timeout 150 ncu --clock-control none -k regex:spense_mmasp_kernel -c 2 --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats \
      --section SchedulerStats /tmp/mmasp_bulk_check $shape 0.25 c 0 1 1 4 4 3 1 > "$OUT/ncu_${shape% *}.txt" 2>&1 \
      || echo "ncu rc=$? ($shape)" >> "$R"
  done
  grep -c "memcheck rc=" "$R"; grep "ERROR SUMMARY" "$R"
  exit 0
fi
if [ "${L2PROBE:-0}" = 1 ]; then
  # L2PROBE=1 instead of the A/B: where e4m3 at M = 8 / 16 spends its bytes (docs/runtime.md §13, twelfth stop: every
  # CTA reads all of x, 0.19 M / RT of the weights' bytes).  Nsight Compute's DRAM, L2 and L1 counters for one launch
  # (the third; SPENSE_HARNESS_ONLY) of the in-order-sum kernel on x's f16 operand at RT = 1, 2, 4 (det_h_rt), the K
  # split at RT = 2 / 4 (ks2_rt) and the extension's M = 1 kernel (early3), 8 warps, 25 % dense cols, on 32B.down,
  # 8B.down and 8B.gate_up ($OUT/l2probe.txt: one block per case, then the A/B lines of the same cases)
  P="$OUT/l2probe.txt"; : > "$P"
  MET=gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_op_read_hit_rate.pct,l1tex__t_sector_hit_rate.pct,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,lts__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed
  for shape in "5120 25600" "4096 12288" "24576 4096"; do
    for c in "early3 1 1" "early3 8 1" "det_h_rt 8 1" "det_h_rt 8 2" "det_h_rt 16 1" "det_h_rt 16 2" "det_h_rt 16 4" \
             "ks2_rt 16 2" "ks2_rt 16 4"; do
      set -- $c
      echo "## $shape col $1 M $2 RT $3" >> "$P"
      SPENSE_HARNESS_ONLY=$1 timeout 120 ncu --clock-control none -k regex:spense_mmasp --launch-skip 2 --launch-count 1 \
        --metrics $MET /tmp/mmasp_bulk_check $shape 0.25 c 1 $2 $3 8 8 10 $([ $2 -gt 1 ] && echo 1 || echo 0) \
        >> "$P" 2>&1 || echo "ncu rc=$? ($shape $c)" >> "$P"
    done
    for M in 8 16; do for RT in 1 2 4; do
      $B $shape 0.25 c 1 $M $RT 8 8 50 1 >> "$R" 2>&1 || echo "FAILED $shape $M RT $RT" >> "$R"
    done; done
  done
  grep -E "^##|gpu__time|dram__bytes|lts__t_sectors|hit_rate|ld.sum|throughput" "$P" | cut -c1-150
  grep -c MISMATCH "$R"
  exit 0
fi
if [ "${TRACE:-0}" = 1 ]; then
  # TRACE=1 instead of the A/B: the harness built again with -DSPENSE_MMASP_TRACE (/tmp/mmasp_trace), then one
  # launch's timeline of the in-order-sum kernel's CTAs (mmasp_bulk_check.cu: "trace" lines) on the eight Qwen3
  # shapes at 25 % dense, M = 1 and 8 (TRACE_MS), e4m3 (x_perm of x's f16 operand at M = 1, its fragments above) and
  # bf16, at the packaged table's warps (4 on 8B.gate_up, else 8); the trace lines also in $OUT/trace.txt
  [ -x /tmp/mmasp_trace ] && [ -n "${PREBUILT:-}" ] \
    || nvcc -std=c++17 -O3 -gencode=arch=compute_90,code=sm_90 --use_fast_math -DSPENSE_MMASP_TRACE \
      -I src/spense/runtime/csrc benchmarks/mmasp_bulk_check.cu -o /tmp/mmasp_trace >> "$OUT/build.txt" 2>&1 \
    || { tail -20 "$OUT/build.txt"; exit 1; }
  echo "## trace" >> "$R"
  for shape in "6144 4096" "4096 4096" "24576 4096" "4096 12288" "10240 5120" "5120 8192" "51200 5120" "5120 25600"; do
    w=$([ "$shape" = "24576 4096" ] && echo 4 || echo 8)
    for M in ${TRACE_MS:-1 8}; do
      xf=$([ $M -gt 1 ] && echo 1 || echo 0)
      for fp8 in 1 0; do
        timeout 60 /tmp/mmasp_trace $shape 0.25 c $fp8 $M 1 $w 4 10 $xf >> "$R" 2>&1 || echo "FAILED trace $shape $M $fp8" >> "$R"
      done
    done
  done
  grep "^trace" "$R" > "$OUT/trace.txt"; cut -c1-200 "$OUT/trace.txt"
  exit 0
fi
if [ "${SWEEP:-0}" = 1 ]; then
  # SWEEP=1 instead of the A/B: M = 1, 25 % dense columns, K = 4096 and 12288, N from 1024 to 24576,
  # bf16 at 4 and 8 warps, 4 warps with the dependent launch, e4m3 at 4 warps: the points that
  # benchmarks/fixed_cost_fit.py fits to t = t0 + bytes / R (fixed cost per launch, streaming rate)
  echo "## sweep" >> "$R"
  for K in 4096 12288; do for N in 1024 2048 4096 8192 16384 24576; do
    for run in "0 1 1 4 4 50 1 0" "0 1 1 8 8 50 1 0" "0 1 1 4 4 50 1 1" "1 1 1 4 8 50 1 0"; do
      set -- $run
      $B $N $K 0.25 c $1 $2 $3 $4 $5 $6 $7 $8 >> "$R" 2>&1 || echo "FAILED sweep $N $K $run" >> "$R"
    done
  done; done
  python3 benchmarks/fixed_cost_fit.py "$R" > "$OUT/fixed_cost.md" 2>&1; cat "$OUT/fixed_cost.md"
  exit 0
fi
echo "## correctness" >> "$R"
MS="1 5 9 20 40"; STS="1 2 5"; [ "$QUICK" = 1 ] && MS="1 5 20" && STS="1 5"
for axis in c r; do for fp8 in 0 1; do for M in $MS; do for st in $STS; do
  $B 256 2304 0.25 $axis $fp8 $M 1 3 $st 3 $((st % 2)) >> "$R" 2>&1 || { echo "FAILED $axis $fp8 $M $st" >> "$R"; }
done; done; done; done
$B 512 4096 0.25 c 0 1 2 4 4 3 >> "$R" 2>&1 || echo "FAILED RT2" >> "$R"
if [ "$QUICK" != 1 ]; then
  echo "## memcheck" >> "$R"
  timeout 120 compute-sanitizer --tool memcheck /tmp/mmasp_bulk_check 128 1024 0.25 c 0 1 1 2 2 1 >> "$R" 2>&1 || echo "memcheck rc=$?" >> "$R"
  timeout 120 compute-sanitizer --tool memcheck /tmp/mmasp_bulk_check 128 1024 0.25 r 1 16 1 2 3 1 >> "$R" 2>&1 || echo "memcheck rc=$?" >> "$R"
  # the dependent launch (pdl=1) and, in every run, the reg_xf_u2 / reg_xf_pf instantiations
  timeout 120 compute-sanitizer --tool memcheck /tmp/mmasp_bulk_check 128 1024 0.25 c 1 16 1 2 2 1 1 1 >> "$R" 2>&1 || echo "memcheck rc=$?" >> "$R"
fi
echo "## timing (25 % dense cols; reg = register kernel with the same RT and warps)" >> "$R"
SHAPES=("6144 4096" "4096 4096" "24576 4096" "4096 12288" "10240 5120" "5120 8192" "51200 5120" "5120 25600")
MS="1 8 16"; CFGS=("1 4 4" "1 4 8" "1 8 8" "2 4 4")
[ "$QUICK" = 1 ] && SHAPES=("${SHAPES[@]:0:4}") && MS="1 16" && CFGS=("1 4 4" "1 8 8")
[ -n "${TIMING_MS:-}" ] && MS="$TIMING_MS"  # e.g. TIMING_MS="1 16 32 64"
for shape in "${SHAPES[@]}"; do
  for M in $MS; do
    xf=$([ $M -gt 1 ] && echo 1 || echo 0)
    for cfg in "${CFGS[@]}"; do
      $B $shape 0.25 c 0 $M $cfg 50 $xf >> "$R" 2>&1 || echo "FAILED $shape $M $cfg" >> "$R"
    done
    # e4m3 at 4 and 8 warps (the packaged table's two RT = 1 configs)
    for w in 4 8; do $B $shape 0.25 c 1 $M 1 $w 8 50 $xf >> "$R" 2>&1 || echo "FAILED fp8 $shape $M $w" >> "$R"; done
    # programmatic dependent launch: each register kernel may start while the one before it finishes
    $B $shape 0.25 c 0 $M ${CFGS[0]} 50 $xf 1 >> "$R" 2>&1 || echo "FAILED pdl $shape $M" >> "$R"
  done
done
echo DONE >> "$R"
if [ "${PYTEST:-0}" = 1 ]; then
  PYTHONPATH=src timeout 400 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_kernels.py \
    tests/test_runtime.py tests/test_mmasp.py tests/test_mmasp_switches.py tests/test_autotune.py tests/test_engine_gpu.py \
    tests/test_attention.py tests/test_unpack.py > "$OUT/pytest.txt" 2>&1
  tail -3 "$OUT/pytest.txt"
fi
grep -c MISMATCH "$R"; tail -5 "$R"
