# call 4, on a's extension
# Run as:
SPENSE_COMMIT=7ebf4a5 bash .carry/cmds/c4.sh
# .carry/cmds/c4.sh:
#   # twenty-fifth stop, call 4 (extension of call 1 carried): the stream-K GPU tests under the default grid (whole
#   # shares); the register kernel against stream-K on 8B.gate_up in e4m3 at M = 12, 16; 8B BF16 at B = 32, the pair
#   # (8B.gate_up on stream-K: SK_MIN_NK 2^26) and Spense again with the old bound (2^27). Outputs in one tar.
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   rm -rf /tmp/o; mkdir -p .carry/ext /tmp/o && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 90 python3 -m pytest -v -m gpu tests/test_wgsp.py -p no:cacheprovider > /tmp/o/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   timeout 40 python3 benchmarks/linear_bench.py --shapes 8B.gate_up --ms 12,16 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,mmasp,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms '' --out /tmp/o/gm > /tmp/o/gm.txt 2>&1; echo "gm rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2eb LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 330 - $(el) )) \
#     ONLY="bw dense_bf16 spense_bf16 ab1" AB1_ENV="SPENSE_WGSD_SK_MIN_NK=134217728" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   rm -f /tmp/o/*/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt; grep -E "passed|failed|FAIL|Error" /tmp/o/tests.txt | tail -8 | cut -c1-250
#   grep -hE "^(8|32)B|rror" /tmp/o/gm.txt | sed -E 's/ +lim=.*//' | cut -c1-330
#   grep -hv skipped /tmp/o/e2eb/stages.txt; grep -hE "^qwen3" /tmp/o/e2eb/log.txt | cut -c1-250 | head
