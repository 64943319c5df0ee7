# call 2 (twenty-second stop), a fresh machine, same extension: the dense BF16 model at B = 1, 8 by default and with
# Inductor's max-autotune for its GEMMs (ab_dense), then the 8B FP8 pair at B = 1, 8. Run as:
Z2_FP8="dense_fp8 spense_fp8" SPENSE_COMMIT=8bafc9f bash .carry/cmds/z2.sh
# .carry/cmds/z2.sh:
#   # twenty-second stop, call 2, same machine: the dense BF16 model at B = 1, 8 by default and with Inductor's max-autotune
#   # for its GEMMs (SPENSE_MAX_AUTOTUNE=1, ab_dense), then the 8B FP8 pair at B = 1, 8 with the time left
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( ${BUDGET:-590} - $(el) )) \
#     ONLY="bw dense_bf16 ab_dense ${Z2_FP8:-}" AB_DENSE_ENV="SPENSE_MAX_AUTOTUNE=1" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   cat $OUT/gpu.txt $OUT/e2e/stages.txt | grep -v skipped
#   grep -E "^qwen3|autotun|AUTOTUNE" $OUT/e2e/log.txt | head -20
