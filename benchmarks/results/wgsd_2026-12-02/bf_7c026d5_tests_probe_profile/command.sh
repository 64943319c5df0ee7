set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 SPENSE_COMMIT=7c026d5
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext SPENSE_CACHE=/tmp/spense_cache
mkdir -p .carry/ext .carry/bin && tar xzf .carry/extz/ext.tgz -C .carry/ext && tar xzf .carry/probez/probe.tgz -C .carry/bin
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
T0=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv; date -u +%FT%TZ; echo "commit $SPENSE_COMMIT"; } > $OUT/gpu.txt
timeout 60 .carry/bin/wgsd_e4m3_probe > $OUT/probe.txt 2>&1; echo "probe rc=$? at $(( $(date +%s) - T0 )) s" >> $OUT/gpu.txt
timeout 230 python -m pytest -m gpu -q -p no:cacheprovider tests/test_runtime.py tests/test_attention.py tests/test_engine_gpu.py > $OUT/tests.txt 2>&1
echo "tests rc=$? at $(( $(date +%s) - T0 )) s" >> $OUT/gpu.txt
python -m spense.engine.measure --bw-only --bw $OUT/bw.json > /dev/null 2>&1
L=$(( 560 - ($(date +%s) - T0) ))
timeout $L python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1 --variants dense-fp8,spense0.25-fp8 --profile --check-tokens 0 --gen 24 --out $OUT/rows.jsonl --bw $OUT/bw.json > $OUT/profile.txt 2>&1
echo "profile rc=$? at $(( $(date +%s) - T0 )) s (limit $L)" >> $OUT/gpu.txt
