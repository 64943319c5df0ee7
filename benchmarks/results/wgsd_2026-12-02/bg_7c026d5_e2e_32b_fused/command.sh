set -u
export PYTHONUNBUFFERED=1 SPENSE_COMMIT=${SPENSE_COMMIT:-7c026d5}
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
OUT=$OUT/${PART:-dense} MODEL=qwen3-32b LAYERS=64 BATCHES=1,8 STAGE_SCALE=4 NORESERVE=1 BUDGET=${BUDGET:-570} ONLY="bw ${STAGES:-dense_fp8}" bash benchmarks/run_e2e.sh
