#!/usr/bin/env bash
# One device call (written at the twenty-seventh stop, not yet run) on a carried build (SPENSE_MMASP_SO: the
# extension of 7955b21, .carry/extz/ext.tgz; no csrc/ change since): BF16 at B = 32, 1.087-1.091x where 1.1x is
# asked.  linear_bench bf16 on the four 8B shapes at M = 32 by default (8B.qkv and 8B.o on the cluster decode form),
# with stream-K everywhere (SPENSE_WGSD_SK=1) and with it and bit 8192 (14337: 8B.qkv's two CTAs a block as one
# cluster, a launch ~1 us shorter, results wgsd_2026-12-04 i); then the 8B BF16 pair at B = 32 with those two as
# A/Bs, and the 8B FP8 pair with e4m3's default grid since the twenty-seventh stop (-3: -2 for e4m3) against the
# grid before it (-1), the first run of -3 as the default.
#   SPENSE_COMMIT=<sha> SPENSE_MMASP_SO=<so> OUT=<dir> [CAP=560] bash benchmarks/run_bf16_b32.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
keep() { rm -f /tmp/o/*/*.png; tar czf $OUT/out.tgz -C /tmp/o .; }  # after each step: a cut call keeps the rest
rm -rf /tmp/o; mkdir -p /tmp/o
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv > /tmp/o/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> /tmp/o/gpu.txt
for ab in "d:" "s:SPENSE_WGSD_SK=1" "c:SPENSE_WGSD_SK=1 SPENSE_WGSD_EXP=14337"; do
  n=${ab%%:*}; e=${ab#*:}
  ( [ -n "$e" ] && export $e; timeout 40 python3 benchmarks/linear_bench.py --out /tmp/o/lb$n --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 32 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,wgsd > /tmp/o/lb$n.txt 2>&1 )
  echo "lb$n ($e) rc=$? at $(el) s" >> /tmp/o/gpu.txt
done; keep
L=$(( ${CAP:-560} - $(el) ))
[ "$L" -gt 120 ] && OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="bw dense_bf16 spense_bf16 ab1 ab2 dense_fp8 spense_fp8 ab_spense_fp8" AB1_ENV="SPENSE_WGSD_SK=1" AB2_ENV="SPENSE_WGSD_SK=1 SPENSE_WGSD_EXP=14337" AB_SPFP8_ENV="SPENSE_WGSD_SK_SPLIT=-1" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
keep
cat /tmp/o/gpu.txt
for n in d s c; do echo "== lb$n"; grep -hE "^(8|32)B|rror" /tmp/o/lb$n.txt | sed -E 's/ +lim=.*//' | cut -c1-200; done
[ -f /tmp/o/e2e/rows.jsonl ] && grep -v skipped /tmp/o/e2e/stages.txt && python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4))
"
true
