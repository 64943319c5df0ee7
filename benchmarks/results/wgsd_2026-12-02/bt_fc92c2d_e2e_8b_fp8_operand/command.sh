# call 2 (eighteenth stop), on call 1's extension (carried): the 8B FP8 pair, and both again with SPENSE_ATTN_OPERAND=1 (ab_fp8)
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s)
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
mkdir -p $OUT/e2e
OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - ($(date +%s)-S) )) ONLY="bw dense_fp8 spense_fp8 ab_fp8" \
  AB_FP8_ENV="SPENSE_ATTN_OPERAND=1" bash benchmarks/run_e2e.sh
echo "end at $(( $(date +%s)-S )) s" >> $OUT/e2e/gpu.txt
grep -v skipped $OUT/e2e/stages.txt
