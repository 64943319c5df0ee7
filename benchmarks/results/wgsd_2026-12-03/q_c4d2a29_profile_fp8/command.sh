# call 5 (twenty-third stop), same machine, call 1's extension: the 8B FP8 step per op class at B = 32 and 8, Spense 25 %
# FP8 then FP8 dense, every dependent launch off (as e did for BF16). Run as one command line:
export PYTHONUNBUFFERED=1 PYTHONPATH=src SPENSE_ATTN_PDL=0 SPENSE_MMASP_PDL=0; mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext; export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so; echo "commit c4d2a29 start $(date -u +%FT%TZ)" > $OUT/gpu.txt; timeout 400 python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 32,8 --out $OUT/rows.jsonl --prompt-len 512 --variants spense0.25-fp8,dense-fp8 --profile --check-tokens 0 --gen 24 > $OUT/log.txt 2>&1; echo "rc=$? end $(date -u +%FT%TZ)" >> $OUT/gpu.txt
# (at c4d2a29 the profile's op classes put spense_wgsd_sk_kernel and the FP8 dense split-K sum under "other"; fixed after:
# the kernel lines of log.txt are the breakdown)
