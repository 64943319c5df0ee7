# call 5 (nineteenth stop), on call 1's extension: the 8B BF16 pair at B = 1, 8 with SPENSE_ATTN_MAX_PROGRAMS 512, 2048, 1024, 512. Run as:
SPENSE_COMMIT=2a6de08 bash .carry/cmds/w6.sh
# .carry/cmds/w6.sh:
#   # nineteenth stop, call 5, on w1's extension: the 8B BF16 pair at B = 1 and 8 with SPENSE_ATTN_MAX_PROGRAMS 512 (the
#   # default), 2048 and 1024, in one call (w5's profile: the split kernel takes 0.50 ms of the step at B = 8, 1.3 TB/s)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   export TORCH_EXTENSIONS_DIR=/tmp/spense_ext SPENSE_CACHE=/tmp/spense_cache
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   python -m spense.engine.measure --bw-only --bw $OUT/bw.json > $OUT/log.txt 2>&1
#   for mp in 512 2048 1024 512; do
#     L=$(( 560 - $(el) )); [ $L -gt 40 ] || break
#     echo "===== SPENSE_ATTN_MAX_PROGRAMS=$mp" >> $OUT/log.txt
#     SPENSE_ATTN_MAX_PROGRAMS=$mp timeout $L python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1,8 \
#       --out $OUT/rows_$mp.jsonl --bw $OUT/bw.json --prompt-len 512 --variants dense,spense0.25 --check-tokens 0 >> $OUT/log.txt 2>&1
#     echo "mp=$mp rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   cat $OUT/gpu.txt
