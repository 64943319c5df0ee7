# call 1 (eighteenth stop): the extension at HEAD, exported; GPU tests of SPENSE_ATTN_OPERAND and the fused attention;
# then Spense BF16 on 8B with and without SPENSE_ATTN_OPERAND=1 (ab1), same call
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s)
el() { echo $(( $(date +%s)-S )); }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
mkdir -p /tmp/f
TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 400 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1
echo "build rc=$? at $(el) s" >> $OUT/gpu.txt
[ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/build_f.txt > $OUT/build.txt; exit 1; }
tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
timeout 150 python3 -m pytest -q -m gpu tests/test_engine_gpu.py tests/test_attention.py -k "operand or fused" -p no:cacheprovider > $OUT/tests.txt 2>&1
echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
mkdir -p $OUT/e2e
OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - $(el) )) ONLY="bw spense_bf16 ab1" \
  AB1_ENV="SPENSE_ATTN_OPERAND=1" bash benchmarks/run_e2e.sh
echo "end at $(el) s" >> $OUT/gpu.txt
tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
