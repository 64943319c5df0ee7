# one call, on the extension built in s4 (carried): the GPU bits test of SPENSE_MMASP_CLAMP, then the 32B BF16 pair end
# to end (64 layers, B = 1, 8)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=/tmp/spense_ext SPENSE_CACHE=/tmp/spense_cache
S=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
timeout 90 python3 -m pytest -q -m gpu tests/test_mmasp.py -k "clamped_rounds" -p no:cacheprovider > $OUT/tests.txt 2>&1
echo "tests rc=$? at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
mkdir -p $OUT/e2e
OUT=$OUT/e2e MODEL=qwen3-32b LAYERS=64 BATCHES=1,8 STAGE_SCALE=4 NORESERVE=1 BUDGET=$(( 530 - ($(date +%s)-S) )) ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh
echo "end at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
