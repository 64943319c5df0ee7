#!/usr/bin/env bash
# forty-fourth stop: the new attention defaults (cap 128 registers, 2 stages; e86e709) on the FP8 pair, 8B, B = 1, 8:
# dense FP8 while the extension builds, then Spense 25 % FP8
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bj}; mkdir -p $W; cp .carry/cmds/n11.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
echo "== dense fp8" >> $W/log.txt; timeout 130 $M --batches 1,8 --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense rc=$? at $(el) s" >> $W/times.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 260 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( 390 - $(el) )); [ $t -gt 140 ] && t=140
echo "== spense fp8" >> $W/log.txt; timeout $t $M --batches 1,8 --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-120
