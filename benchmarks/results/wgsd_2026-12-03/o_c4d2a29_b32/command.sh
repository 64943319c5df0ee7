# call 3 (twenty-third stop), same machine, call 1's extension. Run as:
SPENSE_COMMIT=c4d2a29 bash .carry/cmds/c3.sh
# (e2e_fp8/ did not come back: the call wrote more files under $OUT than come back; its two rows are the
# README's, read from the call's printed log; p repeats the pair)
# .carry/cmds/c3.sh:
#   # twenty-third stop, call 3: the fused attention's same-bits GPU test (now also without norms); the 8B FP8 pair at B = 32,
#   # then the 8B BF16 pair at B = 32 with the time left (36 layers, the extension carried)
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 90 python3 -m pytest -v -m gpu tests/test_attention.py -k "early_kv_and_slot_read_same_bits" -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=$OUT/e2e_fp8 LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 580 - $(el) )) \
#     ONLY="bw dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh
#   echo "fp8 end at $(el) s" >> $OUT/gpu.txt
#   OUT=$OUT/e2e_bf16 LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - $(el) )) \
#     ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   cat $OUT/gpu.txt; tail -8 $OUT/tests.txt; cat $OUT/e2e_*/stages.txt | grep -v skipped
#   grep -hE "^qwen3" $OUT/e2e_*/log.txt | head
