# call 3 (twentieth stop), on call 1's extension: the 8B FP8 pair at B = 1, 8 by default and with SPENSE_FP8_LM_HEAD=1 (ab_fp8),
# then gpt-fast's compiled dense step at B = 1 (anchor; .gptfast/ carried as shared/anchors/README.md says). Run as:
SPENSE_COMMIT=1152e6c bash .carry/cmds/x3.sh
# .carry/cmds/x3.sh:
#   # twentieth stop, call 3, on call 1's extension: the 8B FP8 pair by default and with SPENSE_FP8_LM_HEAD=1 (ab_fp8: both FP8
#   # models' lm_head in e4m3), in one run; then gpt-fast's compiled dense step at B = 1 if >= 170 s are left (anchor)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   mkdir -p $OUT/e2e
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 590 - $(el) )) ONLY="bw dense_fp8 spense_fp8 ab_fp8 anchor" \
#     AB_FP8_ENV="SPENSE_FP8_LM_HEAD=1" ANCHOR_B=1 bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
#   cat $OUT/gpu.txt
