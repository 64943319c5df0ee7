# call 1 (twenty-second stop) on the twentieth stop's extension (carried): the attention's GPU tests (six prologue settings,
# same bits), the 8B BF16 pair at B = 1, 8, Spense again with SPENSE_ATTN_EARLY_PRO=1 (ab1) and SPENSE_ATTN_EARLY_KV=0 (ab2).
# The tree was 8bafc9f (rows' src_digest c4c682fbd373, as in k and l); the commit in gpu.txt and the rows says a299f6b because
# SPENSE_COMMIT was taken from the device copy's git. Run as:
SPENSE_COMMIT=8bafc9f bash .carry/cmds/z1.sh
# .carry/cmds/z1.sh:
#   # twenty-second stop, call 1, on the twentieth stop's extension (carried): the attention's GPU tests (same bits with
#   # EARLY_PRO), then the 8B BF16 pair at B = 1, 8 by default, Spense again with SPENSE_ATTN_EARLY_PRO=1 (ab1) and with
#   # SPENSE_ATTN_EARLY_KV=0 (ab2)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 120 python3 -m pytest -q -m gpu tests/test_attention.py -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( ${BUDGET:-590} - $(el) )) \
#     ONLY="bw dense_bf16 spense_bf16 ab1 ab2" AB1_ENV="SPENSE_ATTN_EARLY_PRO=1" AB2_ENV="SPENSE_ATTN_EARLY_KV=0" \
#     bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   cat $OUT/gpu.txt $OUT/e2e/stages.txt | grep -v skipped; tail -3 $OUT/tests.txt
#   grep -E "^qwen3" $OUT/e2e/log.txt
