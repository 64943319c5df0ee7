# as run (2026-12-07 16:24 UTC) on em's machine, warm: the order of el's bench in one process (dense, then Spense 25 %;
# B = 1 then 8 each), a 4,096-token prompt, /tmp/g270 as em made it.
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1; W=$OUT/en; mkdir -p $W; ls /tmp/g270 > /dev/null && timeout 240 python -m spense.engine.measure --model /tmp/g270 --out $W/rows.jsonl --device cuda --gen 24 --check-tokens 0 --batches 1,8 --variants dense,spense0.25 --prompt-len 4096 > $W/log.txt 2>&1
