# call 6 (nineteenth stop): benchmarks/attn_bench.py (the tree at 2a6de08 plus attn_bench.py and attention.py's SPLIT_WARPS /
# SPLIT_STAGES, committed after). Run as:
SPENSE_COMMIT=2a6de08+attn_bench bash .carry/cmds/w7.sh
# .carry/cmds/w7.sh:
#   # nineteenth stop, call 6: the decode attention alone, swept over the split kernel's launch, beside SDPA (attn_bench)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   timeout 400 python benchmarks/attn_bench.py --batches 8,1 --out $OUT/rows.jsonl > $OUT/log.txt 2>&1
#   echo "rc=$? end $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   cat $OUT/gpu.txt; grep -E "copy|B=8" $OUT/log.txt | head -12
