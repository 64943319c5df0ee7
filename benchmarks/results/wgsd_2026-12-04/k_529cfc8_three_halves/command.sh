#!/usr/bin/env bash
# One device call (written at the twenty-seventh stop): on a carried build of the extension
# (SPENSE_MMASP_SO, from run_sk_cluster.sh's $OUT/ext.tgz), two grid rules of the stream-K form against the
# defaults: SPENSE_WGSD_SK_SPLIT=-2 (three row blocks to two CTAs where whole shares give a CTA two: 8B.gate_up on
# 128 CTAs instead of 96) and SPENSE_WGSD_EXP=14337 (variant bit 8192's clusters, on grids of two CTAs a block:
# 8B.qkv).  sk_timeline of 8B.gate_up under -1, -2 and 0; linear_bench FP8 of 8B.gate_up under -1 and -2; then
# the 8B pairs at B = 32 (BF16, FP8), each rule as an A/B stage of its own.
#   SPENSE_COMMIT=<sha> SPENSE_MMASP_SO=<so> OUT=<dir> [CAP=590] [E2E=1] bash benchmarks/run_sk_halves.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
rm -rf /tmp/o; mkdir -p /tmp/o
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv > /tmp/o/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> /tmp/o/gpu.txt
timeout 60 python3 benchmarks/sk_timeline.py --out /tmp/o/tl --shapes 8B.gate_up --ms 1,16,32 --splits=-1,-2,0 > /tmp/o/tl.txt 2>&1
echo "tl rc=$? at $(el) s" >> /tmp/o/gpu.txt
for s in -1 -2; do SPENSE_WGSD_SK_SPLIT=$s timeout 45 python3 benchmarks/linear_bench.py --out /tmp/o/lf$s --shapes 8B.gate_up --ms 16,32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms '' > /tmp/o/lf$s.txt 2>&1; echo "lf$s rc=$? at $(el) s" >> /tmp/o/gpu.txt; done
L=$(( ${CAP:-590} - $(el) ))
[ "${E2E:-1}" = 1 ] && [ "$L" -gt 120 ] && OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="bw dense_bf16 spense_bf16 ab1 ab2 dense_fp8 spense_fp8 ab_spense_fp8 ab2_spense_fp8" AB1_ENV="SPENSE_WGSD_EXP=14337" AB2_ENV="SPENSE_WGSD_SK_SPLIT=-2" AB_SPFP8_ENV="SPENSE_WGSD_EXP=14337" AB2_SPFP8_ENV="SPENSE_WGSD_SK_SPLIT=-2" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
rm -f /tmp/o/*/*.png
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt
grep -E "^(8|32)B" /tmp/o/tl.txt | cut -c1-175
for s in -1 -2; do echo "== lf$s"; grep -hE "^(8|32)B|rror" /tmp/o/lf$s.txt | sed -E 's/ +lim=.*//' | cut -c1-200; done
[ -f /tmp/o/e2e/rows.jsonl ] && grep -v skipped /tmp/o/e2e/stages.txt && python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4))
"
true
