# call 2 (nineteenth stop), on call 1's extension (carried): GPU tests of SPENSE_ATTN_MERGE_LAST, then the 8B BF16 pair
# by default and with SPENSE_ATTN_MERGE_LAST=1 (ab_bf16). Run as:
SPENSE_COMMIT=2a6de08 bash .carry/cmds/w3.sh
# .carry/cmds/w3.sh:
#   # next stop, call 3, on w1's extension (carried as .carry/extz/ext.tgz): the GPU tests of SPENSE_ATTN_MERGE_LAST, then the
#   # 8B BF16 pair by default and with it (ab_bf16: dense and Spense), in one run
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 200 python3 -m pytest -v -m gpu tests/test_attention.py tests/test_engine_gpu.py -k "merge or switches" -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   mkdir -p $OUT/e2e
#   OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - $(el) )) ONLY="bw dense_bf16 spense_bf16 ab_bf16" \
#     AB_BF16_ENV="SPENSE_ATTN_MERGE_LAST=1" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
#   cat $OUT/gpu.txt
