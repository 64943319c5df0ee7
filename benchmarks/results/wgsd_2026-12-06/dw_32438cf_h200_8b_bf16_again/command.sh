#!/usr/bin/env bash
# fifty-seventh stop: gpt-fast's compiled dense decode step (the anchor, ../shared/anchors) beside our dense and
# Spense 25 % BF16 steps, 8B shape, 36 layers, B = 1 and 8, in one call (last side by side in v46)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-dw}; mkdir -p $W; cp .carry/cmds/q3.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
echo "== gpt-fast" >> $W/log.txt; timeout 280 python3 ../shared/anchors/gptfast_decode.py 1,8 >> $W/log.txt 2>&1; echo "gpt-fast rc=$? at $(el) s" >> $W/times.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda >> $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 1,8"
echo "== dense bf16" >> $W/log.txt; timeout 120 $M --variants dense >> $W/log.txt 2>&1; echo "dense bf16 rc=$? at $(el) s" >> $W/times.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 420 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( 575 - $(el) )); [ $t -gt 130 ] && t=130
echo "== spense bf16" >> $W/log.txt; timeout $t $M --variants spense0.25 >> $W/log.txt 2>&1; echo "spense bf16 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3|ms|floor" $W/log.txt | grep -v Warn | cut -c1-160 | tail -30
