# call 2 (twentieth stop), on call 1's extension (carried): attn_bench at B = 8, 1; the 8B BF16 pair at B = 1, 8 by default and
# with SPENSE_ATTN_MAX_PROGRAMS=2048 (ab_bf16); the pair at B = 32 (e2e/rows_b32.jsonl). Run as:
SPENSE_COMMIT=1152e6c bash .carry/cmds/x2.sh
# .carry/cmds/x2.sh:
#   # twentieth stop, call 2, on call 1's extension (carried as .carry/extz/ext.tgz): the decode attention alone (attn_bench, with
#   # the split kernel's partial sums stored for the G real query rows only, c70273c), then the 8B BF16 pair by default and
#   # with SPENSE_ATTN_MAX_PROGRAMS=2048 (ab_bf16), in one run; then the same pair at B = 32 (default settings) with the time left
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 150 python benchmarks/attn_bench.py --batches 8,1 --out $OUT/attn_rows.jsonl > $OUT/attn_log.txt 2>&1
#   echo "attn_bench rc=$? at $(el) s" >> $OUT/gpu.txt
#   mkdir -p $OUT/e2e
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - $(el) )) ONLY="bw dense_bf16 spense_bf16 ab_bf16" \
#     AB_BF16_ENV="SPENSE_ATTN_MAX_PROGRAMS=2048" bash benchmarks/run_e2e.sh
#   echo "pair at $(el) s" >> $OUT/gpu.txt
#   L=$(( 590 - $(el) ))
#   if [ $L -gt 90 ]; then
#     timeout $L python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 32 --out $OUT/e2e/rows_b32.jsonl \
#       --bw $OUT/e2e/bw.json --prompt-len 512 --variants dense,spense0.25 --check-tokens 0 > $OUT/e2e/log_b32.txt 2>&1
#     echo "b32 rc=$? at $(el) s" >> $OUT/gpu.txt
#   fi
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
#   cat $OUT/gpu.txt; grep -E "copy|B=8|B=1" $OUT/attn_log.txt | head -8
