set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 SPENSE_COMMIT=${SPENSE_COMMIT:-unknown}
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext SPENSE_CACHE=/tmp/spense_cache
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
T0=$(date +%s)
mkdir -p $OUT/e2e
timeout 100 python -m pytest -m gpu -q -p no:cacheprovider tests/test_attention.py tests/test_engine_gpu.py -x > $OUT/e2e/gpu_tests.txt 2>&1
echo "tests rc=$? at $(( $(date +%s) - T0 )) s" >> $OUT/e2e/gpu_tests.txt
L=$(( ${TOTAL:-420} - ($(date +%s) - T0) ))
OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="bw dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh
