#!/usr/bin/env bash
# One device call: the FP8 dense baseline's table measured again with our stream-K kind (`sk`) among its kinds,
# then the 8B end to end at B = 32 with the FP8 dense model picking from that table (Fp8Linear holding the
# kernel layout where it picks `sk`), beside Spense FP8.  In order, each step under what is left of BUDGET s:
# 1. the torch extension, exported to /tmp/spense_mmasp.so (and $OUT/ext.tgz);
# 2. the GPU tests of tests/test_fp8.py and the stream-K ones of tests/test_wgsp_stream_k.py;
# 3. linear_bench.py --dtypes fp8 --ratios 0 --backends dense on the eight Qwen3 linear shapes at
#    M = 1, 8, 16, 32, 64, 2048 -> $W/table/fp8_dense_table.json, copied over src/spense/runtime/fp8_table.json
#    of this (device) checkout for step 4 (commit it from $OUT);
# 4. benchmarks/run_e2e.sh ONLY="bw dense_fp8 spense_fp8", LAYERS=36, BATCHES=32 (E2E_BATCHES) -> $W/e2e (E2E=0:
#    skipped);
# 5. linear_bench bf16 on 8B.gate_up at M = 9, 10, 12, 16 (dense, mmasp, wgsd) -> $W/gu.txt (S5_DTYPE, S5_SHAPES,
#    S5_MS and S5_CAP seconds: another dtype, shapes, M; fp8 without the compiled kind; S5=0: skipped);
# 6. how the extension's refusals reach Python (benchmarks/ext_refusal_probe.py) -> $W/probe.txt (the run of
#    ab had a gdb step here instead, and the device had no gdb);
# then $OUT/fp8sk.tgz of everything (the device tool brings back only a few files).
# SPENSE_MMASP_SO set (a carried build): step 1 skipped; TESTS=0: step 2 skipped (TESTFILES, TESTK, TESTCAP: its
# files, -k and seconds); TABLE=0: step 3 skipped (step 4 on the packaged table); E2E_LAYERS (36), E2E_ONLY (its
# stages; with AB_SPFP8_ENV / AB_FP8_ENV set, add ab_spense_fp8 / ab_fp8) and MODEL pass to step 4; PROBE=0: step 6
# skipped.
#   SPENSE_COMMIT=<sha> OUT=<dir> bash benchmarks/run_fp8_sk.sh
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/spense_ext}
OUT=${OUT:-out}; W="$OUT/fp8sk"; mkdir -p "$W"
T0=$(date +%s); BUDGET=${BUDGET:-585}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
cap() { local l; l=$(left); echo $(( l < $1 ? l : $1 )); }
{ nvidia-smi --query-gpu=name,driver_version --format=csv; date -u +%FT%TZ; echo "commit ${SPENSE_COMMIT:-unknown}"; } > "$W/gpu.txt"
finish() { date -u +%FT%TZ >> "$W/gpu.txt"; tar czf "$OUT/fp8sk.tgz" -C "$OUT" fp8sk; }
if [ -z "${SPENSE_MMASP_SO:-}" ]; then  # else carried from an earlier call (valid while the sources' hash matches)
  { time python3 -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')"; } \
    > "$W/build.txt" 2>&1 || { tail -30 "$W/build.txt"; finish; exit 1; }
  export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
  tar czf "$OUT/ext.tgz" -C /tmp spense_mmasp.so spense_mmasp.so.src  # to carry to a later call (run_wgsd_ab.sh)
fi
if [ "${TESTS:-1}" = 1 ]; then
  timeout "$(cap ${TESTCAP:-90})" python3 -m pytest -q -m gpu ${TESTFILES:-tests/test_fp8.py tests/test_wgsp_stream_k.py} \
    -k "${TESTK:-fp8 or sk or stream_k or refuses}" -p no:cacheprovider > "$W/tests.txt" 2>&1
  echo "tests rc=$?" >> "$W/tests.txt"; tail -2 "$W/tests.txt"
fi
[ "${TABLE:-1}" = 1 ] && timeout "$(cap 200)" python3 benchmarks/linear_bench.py --out "$W/table" --dtypes fp8 --ratios 0 --axes cols \
  --backends dense --fp8-compiled-ms "" --ms 1,8,16,32,64,2048 \
  --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.qkv,32B.o,32B.gate_up,32B.down > "$W/table.txt" 2>&1
echo "table rc=$?" >> "$W/table.txt"
if { [ -f "$W/table/fp8_dense_table.json" ] || [ "${TABLE:-1}" = 0 ]; } && [ "${E2E:-1}" = 1 ]; then
  [ -f "$W/table/fp8_dense_table.json" ] && cp "$W/table/fp8_dense_table.json" src/spense/runtime/fp8_table.json
  E=$(left); [ "$E" -gt 90 ] && E=$(( E - 60 ))  # leave a minute for steps 5 and 6
  OUT="$W/e2e" LAYERS=${E2E_LAYERS:-36} STAGE_SCALE=3 BUDGET=$E NORESERVE=1 BATCHES=${E2E_BATCHES:-32} \
    ONLY=${E2E_ONLY:-"bw dense_fp8 spense_fp8"} bash benchmarks/run_e2e.sh > /dev/null 2>&1
  cat "$W/e2e/stages.txt"
fi
S5A=(--dtypes "${S5_DTYPE:-bf16}"); [ "${S5_DTYPE:-bf16}" = fp8 ] && S5A+=(--fp8-compiled-ms "")
[ "${S5:-1}" = 1 ] && timeout "$(cap "${S5_CAP:-45}")" python3 benchmarks/linear_bench.py --out "$W/gu" --shapes "${S5_SHAPES:-8B.gate_up}" \
  --ms "${S5_MS:-9,10,12,16}" --ratios 0.25 --axes cols --backends dense,mmasp,wgsd --cfgs 1x4,1x8,2x4,2x8 "${S5A[@]}" \
  > "$W/gu.txt" 2>&1
[ "${PROBE:-1}" = 1 ] && [ "$(left)" -gt 20 ] && timeout "$(cap 60)" python3 benchmarks/ext_refusal_probe.py > "$W/probe.txt" 2>&1
finish
grep -h "M=" "$W/gu.txt" | cut -c1-200
