#!/usr/bin/env bash
# thirty-second stop, call 2: the step per op class (torch.profiler) of the 8B BF16 pair and the 8B FP8 pair at B = 8
# (the targets missed there), against today's dense baselines; the extension of call 1 if the machine kept it
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ab; mkdir -p $W; cp .carry/cmds/h2.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
if [ -f /tmp/spense_mmasp.so ]; then export SPENSE_MMASP_SO=/tmp/spense_mmasp.so; echo "extension kept" > $W/times.txt
else echo "extension rebuilt" > $W/times.txt; fi
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
P="python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --profile --check-tokens 0 --gen 24"
timeout 250 $P --variants dense,spense0.25 >> $W/log.txt 2>&1; echo "bf16 rc=$? at $(el) s" >> $W/times.txt
timeout $(( 560 - $(el) )) $P --variants dense-fp8,spense0.25-fp8 >> $W/log.txt 2>&1; echo "fp8 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -v "^\s*$" $W/log.txt | grep -iv "warn" | cut -c1-200 | tail -80
cd $OUT && tar czf ab.tgz ab && rm -rf ab
