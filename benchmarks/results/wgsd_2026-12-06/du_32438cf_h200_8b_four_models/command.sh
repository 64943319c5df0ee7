#!/usr/bin/env bash
# fifty-sixth stop, call 1 (8B shape, 36 layers, B = 1, 8): the four models of issue 12's targets in one call, dense
# BF16 and dense FP8 while the extension builds, then Spense 25 % FP8 and Spense 25 % BF16 (the H200 last measured
# them in v57 / v52: FP8 1.276x / 1.229x, BF16 1.296x / 1.238x)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-do}; mkdir -p $W; cp .carry/cmds/p1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 1,8"
echo "== dense bf16" >> $W/log.txt; timeout 150 $M --variants dense >> $W/log.txt 2>&1; echo "dense bf16 rc=$? at $(el) s" >> $W/times.txt
echo "== dense fp8" >> $W/log.txt; timeout 150 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( 440 - $(el) )); [ $t -gt 130 ] && t=130
echo "== spense fp8" >> $W/log.txt; timeout $t $M --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense fp8 rc=$? at $(el) s" >> $W/times.txt
t=$(( 575 - $(el) )); [ $t -gt 130 ] && t=130
echo "== spense bf16" >> $W/log.txt; timeout $t $M --variants spense0.25 >> $W/log.txt 2>&1; echo "spense bf16 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-130
