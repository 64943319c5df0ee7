# call 5 (eighteenth stop), on call 1's extension (carried): the 8B BF16 pair by default (no switch: the A side of
# call 3), then Spense FP8 on the 32B shape (64 layers, B = 1, 8) with SPENSE_ATTN_OPERAND=1, in what is left
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s)
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
mkdir -p $OUT/e2e8 $OUT/e2e32
OUT=$OUT/e2e8 LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=140 ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh
echo "8b end at $(( $(date +%s)-S )) s" >> $OUT/e2e8/gpu.txt
SPENSE_ATTN_OPERAND=1 OUT=$OUT/e2e32 MODEL=qwen3-32b LAYERS=64 BATCHES=1,8 STAGE_SCALE=4 NORESERVE=1 BUDGET=$(( 415 - ($(date +%s)-S) )) ONLY="bw spense_fp8" \
  bash benchmarks/run_e2e.sh
echo "32b end at $(( $(date +%s)-S )) s" >> $OUT/e2e32/gpu.txt
cat $OUT/e2e*/stages.txt | grep -v skipped
