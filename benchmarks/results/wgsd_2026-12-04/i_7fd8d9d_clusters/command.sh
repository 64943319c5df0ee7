#!/usr/bin/env bash
# One device call (written at the twenty-sixth stop, not yet run): the extension with variant bit 8192 (clusters
# of each row block's CTAs, the parts through distributed shared memory) built and exported ($OUT/ext.tgz); every
# stream-K GPU test (the cluster test among them: 14337 gives 6145's bits); sk_timeline of 6145 against 14337 on
# the 8B shapes and 32B.o (fp8, bf16; M = 1, 16, 32; the default grid); linear_bench FP8 at M = 16, 32 on the four
# 8B shapes with each; compute-sanitizer memcheck of both (benchmarks/sanitize_kernels.py); then the 8B pairs at
# B = 32 with 14337 as the A/B (FP8, then BF16 as time allows).
# The whole of it runs past one call (build ~185 s, tests ~60, timelines and linear_bench ~90, memcheck <= 150,
# e2e ~400): take it in two, E2E=0 first, then the e2e alone on the carried build (SPENSE_MMASP_SO set: no build;
# TESTS=0 PERLAYER=0 MEMCHECK=0: those steps skipped; the e2e runs where more than 120 s of CAP are left).
#   SPENSE_COMMIT=<sha> OUT=<dir> [CAP=590] [E2E=0] [ONLY="<run_e2e stages>"] bash benchmarks/run_sk_cluster.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
rm -rf /tmp/o /tmp/f; mkdir -p /tmp/o /tmp/f
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv > /tmp/o/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> /tmp/o/gpu.txt
if [ -z "${SPENSE_MMASP_SO:-}" ]; then  # else carried from an earlier call (valid while the sources' hash matches)
  TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/o/build.txt 2>&1
  echo "build rc=$? at $(el) s" >> /tmp/o/gpu.txt
  [ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/o/build.txt; cat /tmp/o/gpu.txt; exit 1; }
  tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
  export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
fi
[ "${TESTS:-1}" = 1 ] && { timeout 90 python3 -m pytest -q -m gpu tests/test_wgsp_stream_k.py -p no:cacheprovider > /tmp/o/tests.txt 2>&1; echo "tests rc=$? at $(el) s" >> /tmp/o/gpu.txt; }
[ "${PERLAYER:-1}" = 1 ] && for v in 6145 14337; do SPENSE_WGSD_EXP=$v timeout 40 python3 benchmarks/sk_timeline.py --out /tmp/o/tl$v --shapes 8B.qkv,8B.o,8B.down,32B.o --ms 1,16,32 --splits=-1 > /tmp/o/tl$v.txt 2>&1; echo "tl$v rc=$? at $(el) s" >> /tmp/o/gpu.txt; done
[ "${PERLAYER:-1}" = 1 ] && for v in 6145 14337; do SPENSE_WGSD_EXP=$v timeout 45 python3 benchmarks/linear_bench.py --out /tmp/o/lf$v --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 16,32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms '' > /tmp/o/lf$v.txt 2>&1; echo "lf$v rc=$? at $(el) s" >> /tmp/o/gpu.txt; done
[ "${MEMCHECK:-1}" = 1 ] && SAN_VARIANTS="6145 14337" timeout 150 compute-sanitizer --tool memcheck --print-limit 20 python3 benchmarks/sanitize_kernels.py > /tmp/o/memcheck.txt 2>&1; echo "memcheck rc=$? at $(el) s" >> /tmp/o/gpu.txt
L=$(( ${CAP:-590} - $(el) ))
[ "${E2E:-1}" = 1 ] && [ "$L" -gt 120 ] && OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="${ONLY:-bw dense_fp8 spense_fp8 ab_spense_fp8 dense_bf16 spense_bf16 ab1}" AB_SPFP8_ENV="SPENSE_WGSD_EXP=14337" AB1_ENV="SPENSE_WGSD_EXP=14337" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
rm -f /tmp/o/*/*.png
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; tail -n 3 /tmp/o/tests.txt; tail -n 3 /tmp/o/memcheck.txt
for f in tl6145 tl14337; do echo "== $f"; grep -E "^(8|32)B" /tmp/o/$f.txt | cut -c1-175; done
for f in lf6145 lf14337; do echo "== $f"; grep -hE "^(8|32)B|rror" /tmp/o/$f.txt | sed -E 's/ +lim=.*//' | cut -c1-200; done
[ -f /tmp/o/e2e/rows.jsonl ] && grep -v skipped /tmp/o/e2e/stages.txt && python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4))
"
