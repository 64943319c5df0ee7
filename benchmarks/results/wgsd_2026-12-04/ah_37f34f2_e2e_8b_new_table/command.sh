#!/usr/bin/env bash
# thirty-third stop, call 3: the 8B pairs end to end at B = 1 and 8, BF16 and FP8, on the launch-config table measured
# in call 2 (ag); the dense rows while the extension builds; then Spense again on the table before it
# (SPENSE_MMASP_CFG=.carry/cmds/cfg_old.json) as the A/B
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ah; mkdir -p $W; cp .carry/cmds/i3.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 32"
timeout 200 $M --variants dense,dense-fp8 >> $W/log.txt 2>&1; echo "dense rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 200 $M --variants spense0.25,spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense rc=$? at $(el) s" >> $W/times.txt
t=$(( 585 - $(el) )); [ $t -gt 30 ] && SPENSE_MMASP_CFG=.carry/cmds/cfg_old.json timeout $t $M --variants spense0.25,spense0.25-fp8 >> $W/log.txt 2>&1
echo "spense old table rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-330
cd $OUT && tar czf ah.tgz ah && rm -rf ah
