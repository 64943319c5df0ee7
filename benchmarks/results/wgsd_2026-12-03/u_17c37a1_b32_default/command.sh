# call 3 (twenty-fourth stop), a fresh machine, call 2's extension (csrc unchanged since cb12104). Run as:
SPENSE_COMMIT=17c37a1 bash .carry/cmds/c3.sh
# .carry/cmds/c3.sh:
#   # twenty-fourth stop, call 3: call 2's extension (csrc as at cb12104, carried); the GPU tests again with x in f16 on
#   # tiles of 32 by default; the 8B FP8 pair at B = 32 with today's defaults. Outputs in one tar.
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext /tmp/o && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   timeout 120 python3 -m pytest -v -m gpu tests/test_wgsp.py tests/test_attn_operand.py tests/test_engine_gpu.py -k "fp8_stream_k or f16_x or dense_fp8_through or f16_operand or operand_forms" -p no:cacheprovider > /tmp/o/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 300 - $(el) )) \
#     ONLY="bw dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt; grep -E "PASS|FAIL|ERROR|passed|failed" /tmp/o/tests.txt | cut -c1-200 | tail -25; grep -v skipped /tmp/o/e2e/stages.txt
#   grep -hE "^qwen3" /tmp/o/e2e/log.txt | head
