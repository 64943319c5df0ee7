#!/usr/bin/env bash
# fortieth stop, call 1: the step's wall time per op class (profile_wall_ms: each kernel given only what it adds after
# the ones before it ended) at 8B: FP8 at B = 8 (the pair misses 1.25x by 45 us a step), BF16 at B = 1 (misses 1.3x by
# 10 us); dense rows while the extension builds
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ar; mkdir -p $W; cp .carry/cmds/n1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
P="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --profile --check-tokens 0 --gen 40"
timeout 150 $P --batches 8 --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 b8 rc=$? at $(el) s" >> $W/times.txt
timeout 120 $P --batches 1 --variants dense >> $W/log.txt 2>&1; echo "dense bf16 b1 rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 150 $P --batches 8 --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense fp8 b8 rc=$? at $(el) s" >> $W/times.txt
t=$(( 560 - $(el) )); [ $t -gt 40 ] && timeout $t $P --batches 1 --variants spense0.25 >> $W/log.txt 2>&1
echo "spense bf16 b1 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3|wall time" $W/log.txt | cut -c1-400
cd $OUT && tar czf ar.tgz ar && rm -rf ar
