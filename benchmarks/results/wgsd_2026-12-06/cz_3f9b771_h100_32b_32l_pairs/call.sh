# as run: two calls on one H100 (the second on the machine the first left warm)
# --- call 1 (a fresh nvidia-h100-x1, carry .carry/cmds)
OUT=$OUT SPENSE_COMMIT=3f9b771 LIM=530 H200=n45 L200=cz H100=n45 L100=cz bash .carry/cmds/go.sh
# --- call 2: Spense 25 % FP8 at B = 8 again, its first stage above having run past its 110 s limit after B = 1
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so; mkdir -p $OUT/cz2; nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/cz2/gpu.txt; timeout 170 python -m spense.engine.measure --model qwen3-32b --layers 32 --batches 8 --out $OUT/cz2/rows.jsonl --bw /dev/null --device cuda --prompt-len 512 --gen 24 --check-tokens 0 --variants spense0.25-fp8 > $OUT/cz2/log.txt 2>&1
