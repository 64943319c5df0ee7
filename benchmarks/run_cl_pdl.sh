#!/usr/bin/env bash
# One device call (written at the twenty-eighth stop, not yet run): the cluster decode form launched dependent
# (SPENSE_WGSD_CL_PDL=1; bf16 8B.qkv and 8B.o at M = 17-32 take that form) as the A/B of Spense BF16 in the 8B pair
# at B = 32 (the extension built in the background while dense BF16 runs), then on the exported build the GPU
# tests of both dependent launches (stream-K 38913 and the cluster form: the plain launches' bits) and memcheck of
# 6145 / 38913 with the cluster form launched dependent (38913 was never sanitized: no device time was left).
#   SPENSE_COMMIT=<sha> OUT=<dir> bash benchmarks/run_cl_pdl.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
rm -rf /tmp/o; mkdir -p /tmp/o; echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
keep() { tar czf $OUT/out.tgz -C /tmp/o .; }
OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=330 ONLY="bw dense_bf16 spense_bf16 ab1" \
  AB1_ENV="SPENSE_WGSD_CL_PDL=1" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1
echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
[ -f /tmp/o/e2e/ext.tgz ] && mv /tmp/o/e2e/ext.tgz $OUT/ext.tgz
keep
if [ -f /tmp/spense_mmasp.so ]; then
  export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
  timeout 120 python3 -m pytest -q -m gpu tests/test_wgsp_pdl.py -p no:cacheprovider > /tmp/o/tests.txt 2>&1
  echo "tests rc=$? at $(el) s" >> /tmp/o/gpu.txt; keep
  SPENSE_WGSD_CL_PDL=1 SAN_VARIANTS="6145 38913" timeout 150 compute-sanitizer --tool memcheck --print-limit 20 \
    python3 benchmarks/sanitize_kernels.py > /tmp/o/memcheck.txt 2>&1
  echo "memcheck rc=$? at $(el) s" >> /tmp/o/gpu.txt; keep
fi
cat /tmp/o/gpu.txt; [ -f /tmp/o/tests.txt ] && tail -n 3 /tmp/o/tests.txt; [ -f /tmp/o/memcheck.txt ] && tail -n 3 /tmp/o/memcheck.txt
grep -v skipped /tmp/o/e2e/stages.txt; python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('switches',''))
"
true
