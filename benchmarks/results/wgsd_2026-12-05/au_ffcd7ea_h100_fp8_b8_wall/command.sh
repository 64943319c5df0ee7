#!/usr/bin/env bash
# forty-first stop, call 1: the step's wall time per op class (profile_wall_ms) on the H200 for the 8B FP8 pair at
# B = 8 (Spense misses 1.25x there by 45 us a step), then the attention alone at the 32B shape (8 query heads a KV head)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/au; mkdir -p $W; cp .carry/cmds/n1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
P="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --profile --check-tokens 0 --gen 40 --batches 8"
timeout 240 $P --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 b8 rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( 520 - $(el) )); [ $t -gt 60 ] && timeout $t $P --variants spense0.25-fp8 >> $W/log.txt 2>&1
echo "spense fp8 b8 rc=$? at $(el) s" >> $W/times.txt
t=$(( 575 - $(el) )); [ $t -gt 20 ] && timeout $t python benchmarks/attn_bench.py --batches 8,1 --group 8 --out $W/attn.jsonl >> $W/times.txt 2>&1
echo "attn 32B rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt | tail -40; grep -E "^qwen3|wall time" $W/log.txt | cut -c1-400
