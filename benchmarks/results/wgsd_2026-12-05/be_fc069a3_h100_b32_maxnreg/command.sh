# forty-fourth stop, call 3 (on the machine bc, bd left warm), at fc069a3, run as one command line:
W=$OUT/be; mkdir -p $W
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
for v in dense-fp8 spense0.25-fp8; do for e in SPENSE_ATTN_MAXNREG=0 SPENSE_ATTN_MAXNREG=128; do echo "== $v $e" >> $W/log.txt; env $e timeout 110 $M --batches 32 --variants $v >> $W/log.txt 2>&1; done; done
