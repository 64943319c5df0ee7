# call 4 (twenty-first stop), with the device time left (a fresh machine): the 8B FP8 pair at B = 1, 8 with today's attention
# defaults; the script's budget of 215 s ended spense_fp8 after its B = 1 row (no B = 8 Spense row). Run as:
SPENSE_COMMIT=82674bb BUDGET=215 bash .carry/cmds/y4.sh
# .carry/cmds/y4.sh:
#   # twenty-first stop, call 4, on the same extension, with the device time left: the 8B FP8 pair at B = 1, 8 by default
#   # (SLOT_READ, EARLY_KV and SPLIT_BALANCE on)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=${BUDGET:-215} ONLY="bw dense_fp8 spense_fp8" \
#     bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   cat $OUT/gpu.txt $OUT/e2e/stages.txt | grep -v skipped
