#!/usr/bin/env bash
# 8B at B = 32: BF16 and FP8 pairs; A/Bs of stream-K everywhere with clusters of two (SK=1 + 14337) and SK=1 alone
set -u
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext && export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
export PYTHONUNBUFFERED=1 PYTHONPATH=src
mkdir -p /tmp/o; echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=560 ONLY="bw dense_bf16 spense_bf16 ab1 ab2 dense_fp8 spense_fp8 ab_spense_fp8 ab2_spense_fp8" AB1_ENV="SPENSE_WGSD_SK=1 SPENSE_WGSD_EXP=14337" AB2_ENV="SPENSE_WGSD_SK=1" AB_SPFP8_ENV="SPENSE_WGSD_SK=1 SPENSE_WGSD_EXP=14337" AB2_SPFP8_ENV="SPENSE_WGSD_SK=1" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$?" >> /tmp/o/gpu.txt
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; grep -v skipped /tmp/o/e2e/stages.txt; python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('env',''))
"
