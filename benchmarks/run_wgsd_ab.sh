#!/usr/bin/env bash
# One device call for an A/B of the stream-K decode form's variants (SPENSE_WGSD_EXP), in this order, each
# step under what is left of BUDGET seconds:
# 1. the torch extension built and exported to /tmp/spense_mmasp.so (skipped where SPENSE_MMASP_SO is set);
# 2. the GPU tests of TESTFILES (default tests/test_wgsp.py tests/test_wgsp_stream_k.py; TESTK: pytest's -k;
#    TESTS=0: skipped);
# 3. linear_bench.py at 25 % dense (cols), backends dense and wgsd, for each dtype of DTYPES and each variant
#    of VARIANTS in turn, on SHAPES at MS (LB_ARGS: more of its arguments, e.g. --fp8-extra; BACKENDS: its
#    --backends, e.g. dense,mmasp with LB_ARGS="--cfgs 1x4,2x4" for the mma.sp kernel's launch configs; VAR_ENV:
#    the variable that VARIANTS set, default SPENSE_WGSD_EXP, e.g. VAR_ENV=SPENSE_MMASP_PERSIST VARIANTS="0 1");
# 4. compute-sanitizer memcheck over benchmarks/sanitize_kernels.py (MEMCHECK=1; its variants SAN_VARIANTS; SAN_ENV:
#    assignments it runs under, e.g. SAN_ENV=SPENSE_MMASP_PERSIST=1), in what is left;
# then everything under $OUT/ab, and $OUT/ab.tgz (the device tool brings back only a few files a call); the
# extension built in step 1 also as $OUT/ext.tgz, to carry to a later call (unpacked under .carry/ext:
# SPENSE_MMASP_SO=.carry/ext/spense_mmasp.so, used while the sources' hash matches).
#   SPENSE_COMMIT=<sha> OUT=<dir> VARIANTS="1 65" DTYPES="bf16 fp8" MEMCHECK=1 bash benchmarks/run_wgsd_ab.sh
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/spense_ext}
OUT=${OUT:-out}; W="$OUT/ab"; mkdir -p "$W"
T0=$(date +%s); BUDGET=${BUDGET:-560}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
cap() { local l; l=$(left); echo $(( l < $1 ? l : $1 )); }  # at most $1 seconds, at most what is left
SHAPES=${SHAPES:-8B.gate_up,8B.down,32B.gate_up,32B.down}; MS=${MS:-1,16,32,64}
VARIANTS=${VARIANTS:-1 65}; DTYPES=${DTYPES:-bf16 fp8}
{ nvidia-smi --query-gpu=name,driver_version --format=csv; date -u +%FT%TZ
  echo "commit ${SPENSE_COMMIT:-unknown} variants ${VARIANTS} dtypes ${DTYPES} shapes ${SHAPES} ms ${MS}"; } > "$W/gpu.txt"
finish() { date -u +%FT%TZ >> "$W/gpu.txt"; tar czf "$OUT/ab.tgz" -C "$OUT" ab; }
if [ -z "${SPENSE_MMASP_SO:-}" ]; then
  { time python3 -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')"; } \
    > "$W/build.txt" 2>&1 || { tail -30 "$W/build.txt"; finish; exit 1; }
  export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
  tar czf "$OUT/ext.tgz" -C /tmp spense_mmasp.so spense_mmasp.so.src
fi
if [ "${TESTS:-1}" = 1 ]; then
  timeout "$(cap ${TESTCAP:-150})" python3 -m pytest -q -m gpu ${TESTFILES:-tests/test_wgsp.py tests/test_wgsp_stream_k.py} ${TESTK:+-k "$TESTK"} \
    -p no:cacheprovider > "$W/tests.txt" 2>&1
  echo "tests rc=$?" >> "$W/tests.txt"; tail -2 "$W/tests.txt"
fi
for d in $DTYPES; do
  for v in $VARIANTS; do
    extra=(); [ "$d" = fp8 ] && extra=(--fp8-compiled-ms "")
    [ "$(left)" -gt 20 ] || { echo "no time left for $d $v" >> "$W/gpu.txt"; break 2; }
    env "${VAR_ENV:-SPENSE_WGSD_EXP}=$v" timeout "$(cap 300)" python3 benchmarks/linear_bench.py --out "$W/${d}_$v" --shapes "$SHAPES" \
      --ms "$MS" --ratios 0.25 --axes cols --dtypes "$d" --backends "${BACKENDS:-dense,wgsd}" "${extra[@]}" ${LB_ARGS:-} \
      > "$W/${d}_$v.txt" 2>&1
    echo "rc=$? at $(date -u +%T)" >> "$W/${d}_$v.txt"
  done
done
if [ "${MEMCHECK:-0}" = 1 ]; then
  timeout "$(cap 240)" env ${SAN_ENV:-} compute-sanitizer --tool memcheck --print-limit 20 python3 benchmarks/sanitize_kernels.py \
    > "$W/memcheck.txt" 2>&1
  echo "memcheck rc=$?" >> "$W/memcheck.txt"; tail -3 "$W/memcheck.txt"
fi
finish
grep -h " M=" "$W"/*_*.txt | cut -c1-150 | tail -40
