#!/usr/bin/env bash
# the 8B pairs at B = 32 with 38913 the default (carried build of d1fc502; csrc unchanged since)
set -u
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext && export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
export PYTHONUNBUFFERED=1 PYTHONPATH=src
rm -rf /tmp/o; mkdir -p /tmp/o; echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=255 ONLY="bw dense_bf16 spense_bf16 dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$?" >> /tmp/o/gpu.txt
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; grep -v skipped /tmp/o/e2e/stages.txt; python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('env',''))
"
