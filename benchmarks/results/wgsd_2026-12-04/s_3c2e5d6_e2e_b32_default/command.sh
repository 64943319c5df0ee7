#!/usr/bin/env bash
# Call C (twenty-ninth stop): the 8B pair at B = 32, BF16 and FP8, under the defaults of 3c2e5d6 (the cluster
# decode form launched dependent), on call A's build.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
rm -rf /tmp/o; mkdir -p /tmp/o .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 \
  BUDGET=500 ONLY="bw dense_bf16 spense_bf16 dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1
echo "e2e rc=$?"; tar czf $OUT/out.tgz -C /tmp/o .
grep -v skipped /tmp/o/e2e/stages.txt; python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), round(r.get('floor_ms',0),4), r.get('switches',''))
"
