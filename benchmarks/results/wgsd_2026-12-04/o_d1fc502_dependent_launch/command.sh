#!/usr/bin/env bash
# variant bit 32768 (the stream-K kernel launched dependent: each CTA's entry overlapping the kernel before):
# the 8B pairs at B = 32 with 38913 as the A/B of Spense BF16 and FP8 (extension built in the background while
# dense BF16 runs), then the stream-K GPU tests (38913 must give 6145's bits) on the exported build
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
rm -rf /tmp/o; mkdir -p /tmp/o; echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=470 ONLY="bw dense_bf16 spense_bf16 ab1 dense_fp8 spense_fp8 ab_spense_fp8" AB1_ENV="SPENSE_WGSD_EXP=38913" AB_SPFP8_ENV="SPENSE_WGSD_EXP=38913" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
[ -f /tmp/o/e2e/ext.tgz ] && mv /tmp/o/e2e/ext.tgz $OUT/ext.tgz
tar czf $OUT/out.tgz -C /tmp/o .
[ -f /tmp/spense_mmasp.so ] && SPENSE_MMASP_SO=/tmp/spense_mmasp.so timeout 90 python3 -m pytest -q -m gpu tests/test_wgsp_stream_k.py -p no:cacheprovider -k "dependent or early or cluster_sums or refuses" > /tmp/o/tests.txt 2>&1; echo "tests rc=$? at $(el) s" >> /tmp/o/gpu.txt
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; tail -n 3 /tmp/o/tests.txt; grep -v skipped /tmp/o/e2e/stages.txt; python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('env',''))
"
