#!/usr/bin/env bash
# thirty-fourth stop, call 1: the extension built once and exported (ext.tgz comes back, so that later calls carry it
# instead of building), then the 8B FP8 pair at B = 1 and 8 in one call on the launch-config table of 37f34f2
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/aj; mkdir -p $W; cp .carry/cmds/j1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 360 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 $W/build.log >> $W/times.txt
[ -f /tmp/spense_mmasp.so ] && tar czf $OUT/ext.tgz -C /tmp spense_mmasp.so spense_mmasp.so.src && ls -la $OUT/ext.tgz >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda >> $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 32"
timeout 180 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
t=$(( 580 - $(el) )); [ $t -gt 30 ] && timeout $t $M --variants spense0.25-fp8 >> $W/log.txt 2>&1
echo "spense fp8 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-330
cd $OUT && tar czf aj.tgz aj && rm -rf aj
