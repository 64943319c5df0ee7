# call 4 (nineteenth stop), on call 1's extension: the 8B BF16 step per op class at B = 8 and 1, dense and Spense, every
# dependent launch off. Run as:
SPENSE_COMMIT=2a6de08 bash .carry/cmds/w5.sh
# .carry/cmds/w5.sh:
#   # nineteenth stop, call 4, on w1's extension: the 8B BF16 step per op class, dense and Spense, at B = 8 and B = 1, with
#   # every dependent launch off (SPENSE_ATTN_PDL=0 SPENSE_MMASP_PDL=0) so that no kernel's time holds its wait for the one before
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src SPENSE_ATTN_PDL=0 SPENSE_MMASP_PDL=0
#   export TORCH_EXTENSIONS_DIR=/tmp/spense_ext SPENSE_CACHE=/tmp/spense_cache
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   python -m spense.engine.measure --bw-only --bw $OUT/bw.json > $OUT/log.txt 2>&1
#   for B in 8 1; do
#     L=$(( 560 - $(el) )); [ $L -gt 30 ] || break
#     timeout $L python -m spense.engine.measure --model qwen3-8b --layers 36 --batches $B --out $OUT/rows.jsonl --bw $OUT/bw.json \
#       --prompt-len 512 --variants dense,spense0.25 --profile --check-tokens 0 --gen 24 >> $OUT/log.txt 2>&1
#     echo "B=$B rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   cat $OUT/gpu.txt
