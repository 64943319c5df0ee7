# call 2 (twenty-first stop), on the same extension: the 8B BF16 pair at B = 32 by default and with SPENSE_ATTN_SPLIT_BALANCE=1
# (ab_bf16). Run as:
SPENSE_COMMIT=328ce63 bash .carry/cmds/y2.sh
# .carry/cmds/y2.sh:
#   # twenty-first stop, call 2, on the same extension: the 8B BF16 pair at B = 32 by default and with
#   # SPENSE_ATTN_SPLIT_BALANCE=1 (ab_bf16: two splits of 320 keys a row and KV head in place of 512 + 128)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   mkdir -p $OUT/e2e
#   OUT=$OUT/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 590 - $(el) )) ONLY="bw dense_bf16 spense_bf16 ab_bf16" \
#     AB_BF16_ENV="${AB:-SPENSE_ATTN_SPLIT_BALANCE=1}" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
#   cat $OUT/gpu.txt
