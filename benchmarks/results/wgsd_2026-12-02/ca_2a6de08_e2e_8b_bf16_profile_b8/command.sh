# call 3 (nineteenth stop), on call 1's extension: the 8B BF16 step per op class at B = 8, dense and Spense (PDL on). Run as:
SPENSE_COMMIT=2a6de08 bash .carry/cmds/w4.sh
# .carry/cmds/w4.sh:
#   # nineteenth stop, call 3, on w1's extension: the 8B BF16 step per op class at B = 8, dense and Spense (Next 7)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   mkdir -p $OUT/e2e
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=4 NORESERVE=1 BUDGET=$(( 570 - $(el) )) ONLY="bw profile" \
#     PROFILE_FLAGS="--batches 8" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
#   cat $OUT/gpu.txt
