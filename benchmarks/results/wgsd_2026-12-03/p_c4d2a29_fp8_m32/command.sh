# call 4 (twenty-third stop), same machine, call 1's extension. Run as:
SPENSE_COMMIT=c4d2a29 bash .carry/cmds/c4.sh
# .carry/cmds/c4.sh:
#   # twenty-third stop, call 4: linear_bench FP8 at M = 32 on the four 8B shapes (the FP8 dense baseline, the register
#   # kernel at 1x4 / 1x8 / 2x8, the e4m3 stream-K form); then the 8B FP8 pair at B = 32 by default and Spense FP8 again with
#   # SPENSE_WGSD_MIN_M=0 (no layer on the warpgroup decode form: the register kernel at M = 32). Outputs in one tar.
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   mkdir -p /tmp/o
#   timeout 200 python3 benchmarks/linear_bench.py --out /tmp/o/lb --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 32 --ratios 0.25 \
#     --axes cols --dtypes fp8 --backends dense,mmasp,wgsd --cfgs 1x4,1x8,2x8 --fp8-compiled-ms "" > /tmp/o/lb.txt 2>&1
#   echo "lb rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 575 - $(el) )) \
#     ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8" AB_SPFP8_ENV="SPENSE_WGSD_MIN_M=0" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   rm -f /tmp/o/lb/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt; grep -E "^8B|failed|FAILED" /tmp/o/lb.txt | cut -c1-300; grep -v skipped /tmp/o/e2e/stages.txt
#   grep -hE "^qwen3" /tmp/o/e2e/log.txt | head
