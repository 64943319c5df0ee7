# call 4 (twentieth stop), on call 1's extension: gpt-fast's compiled dense step at B = 8, then the launch test of the clamped
# kernels again with a longer timeout. Run as (one command line, .carry/extz and .gptfast carried):
export PYTHONUNBUFFERED=1 PYTHONPATH=src; mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext; export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
echo "commit 1152e6c start $(date -u +%FT%TZ)" > $OUT/gpu.txt
timeout 150 python3 .gptfast/gptfast_decode.py 8 > $OUT/anchor_b8.txt 2>&1; echo "anchor rc=$? $(date -u +%T)" >> $OUT/gpu.txt
timeout 240 python3 -m pytest -v -m gpu tests/test_mmasp.py -k "launches_the_clamped" -p no:cacheprovider > $OUT/tests.txt 2>&1
echo "tests rc=$? $(date -u +%T)" >> $OUT/gpu.txt
