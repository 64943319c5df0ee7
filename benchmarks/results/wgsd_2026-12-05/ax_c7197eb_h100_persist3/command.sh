#!/usr/bin/env bash
# forty-second stop, call 1 (8B, 36 layers, FP8): Spense 25 % at B = 1, 8 by default, with SPENSE_MMASP_PERSIST=3
# (the persistent form only where the grid is more than one wave: 8B.gate_up, 0.60 of copy in the step) and with
# SPENSE_ATTN_MERGE_LATE=1; then PERSIST=3's profile at B = 8 (gate_up's share); the persistent-form bits test;
# dense FP8 last (on an H100 it measures its kernels per bucket at load: slow), for the ratio
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ax; mkdir -p $W; cp .carry/cmds/n4.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> /tmp/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 /tmp/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() {  # name, limit, end-by, args..., then env assignments after --
  local n=$1 lim=$2 end=$3; shift 3; local a=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do a+=("$1"); shift; done; shift
  t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  env "$@" timeout $t $M "${a[@]}" >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 default" 100 580 --batches 1,8 --variants spense0.25-fp8 -- SPENSE_ATTN_MERGE_LATE=0
run "spense fp8 persist3" 100 580 --batches 1,8 --variants spense0.25-fp8 -- SPENSE_MMASP_PERSIST=3
run "spense fp8 merge late" 100 580 --batches 1,8 --variants spense0.25-fp8 -- SPENSE_ATTN_MERGE_LATE=1
run "spense fp8 persist3 profile b8" 80 580 --batches 8 --profile --variants spense0.25-fp8 -- SPENSE_MMASP_PERSIST=3
t=$(( 585 - $(el) )); [ $t -gt 30 ] && timeout $t python -m pytest -q -x tests/test_mmasp_switches.py -k persistent > $W/test.txt 2>&1
echo "persist test rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3|wall time|launch configs" $W/log.txt | cut -c1-300; tail -3 $W/test.txt
