# call 4 (eighteenth stop), on call 1's extension (carried): the GPU tests of SPENSE_ATTN_OPERAND, then the
# attention's fused GPU tests, each with its own time limit
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s)
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
timeout 330 python3 -m pytest -v -m gpu tests/test_engine_gpu.py -k operand -p no:cacheprovider --durations=0 > $OUT/tests_operand.txt 2>&1
echo "operand tests rc=$? at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
timeout $(( 540 - ($(date +%s)-S) )) python3 -m pytest -v -m gpu tests/test_attention.py -p no:cacheprovider --durations=0 > $OUT/tests_attention.txt 2>&1
echo "attention tests rc=$? at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
cat $OUT/gpu.txt
