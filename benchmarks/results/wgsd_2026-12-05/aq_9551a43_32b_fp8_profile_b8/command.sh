#!/usr/bin/env bash
# thirty-fifth stop, call 3: where the 32B FP8 step goes at B = 8 (call 2: 1.202x, the target 1.25x): torch.profiler per
# op class, Spense 25 % FP8 first, then dense FP8 with what is left; the whole call kept under ~380 s (the session's
# device time left: 527 s)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ao; mkdir -p $W; cp .carry/cmds/k3.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
s=$(date +%s); timeout 150 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
P="python -m spense.engine.measure --model qwen3-32b --layers 64 --batches 8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --profile --check-tokens 0 --gen 24"
timeout 170 $P --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense fp8 rc=$? at $(el) s" >> $W/times.txt
t=$(( 375 - $(el) )); [ $t -gt 30 ] && timeout $t $P --variants dense-fp8 >> $W/log.txt 2>&1
echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -v "^\s*$" $W/log.txt | grep -iv "warn" | cut -c1-200 | tail -50
cd $OUT && tar czf ao.tgz ao && rm -rf ao
