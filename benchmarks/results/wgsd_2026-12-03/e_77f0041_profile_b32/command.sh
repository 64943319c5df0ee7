# call 5 (twentieth stop), on call a's extension (.carry/extz carried): the 8B BF16 step per op class at B = 32, Spense 25 %
# then dense, every dependent launch off (so that no kernel's time holds its wait for the one before). Run as one command line:
export PYTHONUNBUFFERED=1 PYTHONPATH=src SPENSE_ATTN_PDL=0 SPENSE_MMASP_PDL=0
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext; export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
echo "commit 77f0041 start $(date -u +%FT%TZ)" > $OUT/gpu.txt
timeout 175 python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 32 --out $OUT/rows.jsonl --prompt-len 512 \
  --variants spense0.25,dense --profile --check-tokens 0 --gen 24 > $OUT/log.txt 2>&1
echo "rc=$? end $(date -u +%FT%TZ)" >> $OUT/gpu.txt
