#!/usr/bin/env bash
# One device call (written at the twenty-seventh stop): the extension built with variant bit 8192's clusters of
# two CTAs over three row blocks (the middle one shared; the second CTA walks its blocks last to first) and
# exported ($OUT/ext.tgz); the stream-K GPU tests (the cluster test covers split -2: 14337 gives 6145's bits);
# sk_timeline of 8B.gate_up under split -2 with 14337 (6145's in run_sk_halves.sh); the 8B FP8 pair at B = 32 with
# "SPENSE_WGSD_SK_SPLIT=-2 SPENSE_WGSD_EXP=14337" as the A/B; compute-sanitizer memcheck last, as time allows.
#   SPENSE_COMMIT=<sha> OUT=<dir> [CAP=480] bash benchmarks/run_sk_pairs.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
keep() { rm -f /tmp/o/*/*.png; tar czf $OUT/out.tgz -C /tmp/o .; }  # after each step: a cut call keeps the rest
rm -rf /tmp/o /tmp/f; mkdir -p /tmp/o /tmp/f
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv > /tmp/o/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> /tmp/o/gpu.txt
TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/o/build.txt 2>&1
echo "build rc=$? at $(el) s" >> /tmp/o/gpu.txt
[ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/o/build.txt; cat /tmp/o/gpu.txt; exit 1; }
tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
timeout 90 python3 -m pytest -q -m gpu tests/test_wgsp_stream_k.py -p no:cacheprovider > /tmp/o/tests.txt 2>&1; echo "tests rc=$? at $(el) s" >> /tmp/o/gpu.txt; keep
for v in 14337; do SPENSE_WGSD_EXP=$v timeout 40 python3 benchmarks/sk_timeline.py --out /tmp/o/tl$v --shapes 8B.gate_up --ms 1,16,32 --splits=-2 > /tmp/o/tl$v.txt 2>&1; echo "tl$v rc=$? at $(el) s" >> /tmp/o/gpu.txt; done; keep
L=$(( ${CAP:-480} - 60 - $(el) ))
[ "$L" -gt 120 ] && OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8" AB_SPFP8_ENV="SPENSE_WGSD_SK_SPLIT=-2 SPENSE_WGSD_EXP=14337" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt; keep
L=$(( ${CAP:-480} - $(el) ))
[ "$L" -gt 20 ] && SAN_VARIANTS="6145 14337" timeout $L compute-sanitizer --tool memcheck --print-limit 20 python3 benchmarks/sanitize_kernels.py > /tmp/o/memcheck.txt 2>&1; echo "memcheck rc=$? at $(el) s" >> /tmp/o/gpu.txt
keep
cat /tmp/o/gpu.txt; tail -n 3 /tmp/o/tests.txt; grep -c "three blocks" /tmp/o/memcheck.txt; tail -n 3 /tmp/o/memcheck.txt
for f in tl14337; do echo "== $f"; grep -E "^(8|32)B" /tmp/o/$f.txt | cut -c1-175; done
[ -f /tmp/o/e2e/rows.jsonl ] && grep -v skipped /tmp/o/e2e/stages.txt && python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4))
"
true
