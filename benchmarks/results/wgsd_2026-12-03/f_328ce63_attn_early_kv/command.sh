# call 1 (twenty-first stop), on the twentieth's extension (1152e6c, carried as .carry/extz/ext.tgz; csrc unchanged since): attn_bench at
# B = 32, 8, 1 (with the fused rows, EARLY_KV off and on); the attention's GPU tests; the 8B BF16 pair at B = 1, 8 by default and
# with SPENSE_ATTN_EARLY_KV=1 (ab_bf16). Run as:
SPENSE_COMMIT=328ce63 bash .carry/cmds/y1.sh
# .carry/cmds/y1.sh:
#   # twenty-first stop, call 1, on the twentieth's extension (1152e6c; csrc unchanged since): the attention alone
#   # (attn_bench at B = 32, 8, 1: the balanced rows and the fused rows with and without EARLY_KV), the attention's GPU tests,
#   # then the 8B BF16 pair at B = 1, 8 by default and with SPENSE_ATTN_EARLY_KV=1 (ab_bf16), in one run
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 150 python benchmarks/attn_bench.py --batches 32,8,1 --out $OUT/attn_rows.jsonl > $OUT/attn_log.txt 2>&1
#   echo "attn_bench rc=$? at $(el) s" >> $OUT/gpu.txt
#   timeout 150 python3 -m pytest -q -m gpu tests/test_attention.py -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   mkdir -p $OUT/e2e
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 590 - $(el) )) ONLY="bw dense_bf16 spense_bf16 ab_bf16" \
#     AB_BF16_ENV="SPENSE_ATTN_EARLY_KV=1" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
#   cat $OUT/gpu.txt; tail -3 $OUT/tests.txt; grep -E "copy|fused|balanced|BLOCK=32 warps=4 stages=None max_programs=512$" $OUT/attn_log.txt | head -24
