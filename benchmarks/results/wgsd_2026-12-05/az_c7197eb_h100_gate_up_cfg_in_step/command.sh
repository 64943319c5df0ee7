#!/usr/bin/env bash
# forty-second stop, call 3 (H100): 8B.gate_up e4m3 at M = 8 runs at 0.60 of the copy rate in the B = 8 step but 0.84
# alone, at any launch config; here its launch config swept IN the step (Spense 25 % FP8, B = 8, 36 layers): the
# packaged H100 table with only the cell fp8,cols,24576,4096,0.25,8 changed (SPENSE_MMASP_CFG), the table's own
# [1, 8] first and last as the baseline
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/az; mkdir -p $W; cp .carry/cmds/n6.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1
echo "extension ready at $(el) s" >> $W/times.txt
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 8 --variants spense0.25-fp8"
for c in 1x8 1x4 2x4 2x8 1x6 1x8; do
  python -c "
import json, sys
t = json.load(open('src/spense/runtime/mmasp_cfg_h100.json'))
t['mmasp_cfg']['fp8,cols,24576,4096,0.25,8'] = [int(v) for v in sys.argv[1].split('x')]
json.dump(t, open('/tmp/cfg_$c.json', 'w'))" $c
  t=$(( 585 - $(el) )); cap=90; [ -f /tmp/warm_az ] || cap=120; [ $t -gt $cap ] && t=$cap; touch /tmp/warm_az; [ $t -lt 40 ] && { echo "$c skipped at $(el) s" >> $W/times.txt; continue; }
  echo "== gate_up cfg $c" >> $W/log.txt
  SPENSE_MMASP_CFG=/tmp/cfg_$c.json timeout $t $M >> $W/log.txt 2>&1; echo "$c rc=$? at $(el) s" >> $W/times.txt
done
cat $W/times.txt; grep -E "^== |^qwen3|launch configs" $W/log.txt | cut -c1-120
