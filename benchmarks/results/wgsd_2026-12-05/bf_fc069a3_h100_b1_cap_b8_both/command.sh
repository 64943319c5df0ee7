# forty-fourth stop, call 4 (same machine), at fc069a3, run as one command line:
W=$OUT/bf; mkdir -p $W
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
for v in dense-fp8 spense0.25-fp8; do for e in "SPENSE_ATTN_MAXNREG=0" "SPENSE_ATTN_MAXNREG=128"; do echo "== $v $e B=1" >> $W/log.txt; env $e timeout 90 $M --batches 1 --variants $v >> $W/log.txt 2>&1; done; echo "== $v stages2+cap128 B=8" >> $W/log.txt; env SPENSE_ATTN_STAGES=2 SPENSE_ATTN_MAXNREG=128 timeout 90 $M --batches 8 --variants $v >> $W/log.txt 2>&1; done
