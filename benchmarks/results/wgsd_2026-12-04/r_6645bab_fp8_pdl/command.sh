#!/usr/bin/env bash
# Two device calls (written at the twenty-eighth stop, not yet run).
# Call A: the cluster decode form launched dependent (SPENSE_WGSD_CL_PDL=1; bf16 8B.qkv and 8B.o at M = 17-32 take
# that form) as the A/B of Spense BF16 in the 8B pair at B = 32 (the extension built in the background while dense
# BF16 runs), then on the exported build the GPU tests of the dependent launches (tests/test_wgsp_pdl.py, and the
# FP8 dense kernel's in test_fp8.py) and memcheck of 6145 / 38913 with the cluster form launched dependent (38913
# was never sanitized: no device time was left).
#   SPENSE_COMMIT=<sha> OUT=<dir> bash benchmarks/run_pdl.sh
# Call B (FP8=1, on A's build; then memcheck of the W8A16 and warpgroup kernels alone, SAN_PARTS, as A's ran out of
# time in the mma.sp kernel's calls): the FP8 dense baseline's W8A16 kernel launched dependent (SPENSE_FP8_PDL=1), the
# 8B dense FP8 at B = 1, 8 by default, then the FP8 pair under it (AB_FP8_ENV: the baseline gets what the Spense
# kernels have)
#   SPENSE_COMMIT=<sha> SPENSE_MMASP_SO=<so> FP8=1 OUT=<dir> bash benchmarks/run_pdl.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
rm -rf /tmp/o; mkdir -p /tmp/o; echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
keep() { tar czf $OUT/out.tgz -C /tmp/o .; }
if [ "${FP8:-0}" = 1 ]; then
  OUT=/tmp/o/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=430 ONLY="bw dense_fp8 ab_fp8" \
    AB_FP8_ENV="SPENSE_FP8_PDL=1" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1
else
  OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=330 ONLY="bw dense_bf16 spense_bf16 ab1" \
    AB1_ENV="SPENSE_WGSD_CL_PDL=1" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1
fi
echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
[ -f /tmp/o/e2e/ext.tgz ] && mv /tmp/o/e2e/ext.tgz $OUT/ext.tgz
keep
[ -f /tmp/spense_mmasp.so ] && export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
if [ "${FP8:-0}" != 1 ] && [ -f /tmp/spense_mmasp.so ]; then
  timeout 110 python3 -m pytest -q -m gpu tests/test_wgsp_pdl.py tests/test_fp8.py -k "dependent or pdl" \
    -p no:cacheprovider > /tmp/o/tests.txt 2>&1
  echo "tests rc=$? at $(el) s" >> /tmp/o/gpu.txt; keep
fi
# memcheck of the dependent launches: the W8A16 kernel and the warpgroup kernel (6145, 38913; the cluster form too)
T=$(( 580 - $(el) )); [ $T -gt 150 ] && T=150
if [ -n "${SPENSE_MMASP_SO:-}" ] && [ $T -gt 40 ]; then
  SPENSE_WGSD_CL_PDL=1 SPENSE_FP8_PDL=1 SAN_VARIANTS="6145 38913" SAN_PARTS="w8a16 wgsp" timeout $T \
    compute-sanitizer --tool memcheck --print-limit 20 python3 benchmarks/sanitize_kernels.py > /tmp/o/memcheck.txt 2>&1
  echo "memcheck rc=$? at $(el) s" >> /tmp/o/gpu.txt; keep
fi
cat /tmp/o/gpu.txt; [ -f /tmp/o/tests.txt ] && tail -n 3 /tmp/o/tests.txt; [ -f /tmp/o/memcheck.txt ] && tail -n 3 /tmp/o/memcheck.txt
grep -v skipped /tmp/o/e2e/stages.txt; python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('switches',''))
"
true
