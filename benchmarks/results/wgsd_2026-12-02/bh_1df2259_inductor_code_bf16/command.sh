set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 SPENSE_COMMIT=${SPENSE_COMMIT:-1df2259}
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext SPENSE_CACHE=/tmp/spense_cache
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
T0=$(date +%s)
mkdir -p /tmp/code
for v in dense-fp8 spense0.25-fp8; do
  TORCH_LOGS=output_code TORCH_LOGS_OUT=/tmp/code/$v.txt timeout 150 python -m spense.engine.measure --model qwen3-8b --layers 2 --batches 1 --variants $v --check-tokens 0 --gen 8 --prompt-len 64 > /tmp/code/$v.log 2>&1
  echo "$v rc=$? at $(( $(date +%s) - T0 )) s" >> /tmp/code/rc.txt
done
tar czf $OUT/code.tgz -C /tmp code
L=$(( ${TOTAL:-560} - ($(date +%s) - T0) ))
OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="bw ${STAGES:-dense_bf16 spense_bf16}" bash benchmarks/run_e2e.sh
