#!/usr/bin/env bash
# thirty-fifth stop, call 2: the 32B FP8 pair at B = 1 and 8 (64 layers) on the launch-config table of 37f34f2, in one
# call (v39's pair, 1.267x / 1.220x, ran on the table before; al was cut when the one-unit build took 278 s); the
# three-unit extension built first (the dense FP8 model needs it)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/an; mkdir -p $W; cp .carry/cmds/k2.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
s=$(date +%s); timeout 240 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-32b --layers 64 --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
timeout 230 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
t=$(( 585 - $(el) )); [ $t -gt 30 ] && timeout $t $M --variants spense0.25-fp8 >> $W/log.txt 2>&1
echo "spense fp8 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-250
cd $OUT && tar czf an.tgz an && rm -rf an
