#!/usr/bin/env bash
# fortieth stop, call 3: SPENSE_ATTN_ONE_KERNEL again (call 2: its counts were made inside torch.compile's CUDA graph
# pool and refused; now reserved by setup_caches), the GPU bits check, then the 8B BF16 pair at B = 1 with and without
# it; rows written straight under $OUT so that a cut call still returns them
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/at; mkdir -p $W; cp .carry/cmds/n3.sh $W/command.sh; cp .carry/cmds/onek_check.py $W/
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 200 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
timeout 40 python .carry/cmds/onek_check.py > $W/check.txt 2>&1; echo "check rc=$? at $(el) s" >> $W/times.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
SPENSE_ATTN_ONE_KERNEL=1 timeout 75 $M --variants dense >> $W/log.txt 2>&1; echo "dense one rc=$? at $(el) s" >> $W/times.txt
timeout 75 $M --variants dense >> $W/log.txt 2>&1; echo "dense rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
SPENSE_ATTN_ONE_KERNEL=1 timeout 90 $M --variants spense0.25 >> $W/log.txt 2>&1; echo "spense one rc=$? at $(el) s" >> $W/times.txt
t=$(( 320 - $(el) )); [ $t -gt 40 ] && timeout $t $M --variants spense0.25 >> $W/log.txt 2>&1
echo "spense rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt $W/check.txt; grep -E "^qwen3" $W/log.txt | cut -c1-160; grep -B3 -A3 "Error" $W/log.txt | grep -v "^\s*File" | cut -c1-200 | head -20
