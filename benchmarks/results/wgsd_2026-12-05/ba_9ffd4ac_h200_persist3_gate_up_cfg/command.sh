#!/usr/bin/env bash
# next stop, call 1 (8B, 36 layers, FP8; written in the forty-second stop): SPENSE_MMASP_PERSIST=3 as d3ba0cc has it
# (the persistent form on grids of more than one wave of the one-block kernel: 8B.gate_up alone) against the default,
# B = 1, 8; then gate_up at 16, 12 and 2 warps a CTA (SPENSE_MMASP_CFG: the packaged table with its cells at M = 1, 8
# changed). In the forty-second stop's in-step sweep (az) the step grew as the warps a 16-row tile fell (8: 3.507 ms,
# 6: 3.520, 4: 3.523 / 3.577, 2: 3.751), whatever the waves; 16 and 12 follow that trend, and 1x2 is the one config
# whose 1,536 CTAs fit in one wave of the one-block kernel (12 CTAs of 2 warps a SM at 76-80 registers)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-ba}; mkdir -p $W; cp .carry/cmds/n7.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1
echo "extension ready at $(el) s" >> $W/times.txt
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() {  # name, limit, end-by, args..., then env assignments after --
  local n=$1 lim=$2 end=$3; shift 3; local a=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do a+=("$1"); shift; done; shift
  t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  env "$@" timeout $t $M "${a[@]}" >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 default" 150 580 --batches 1,8 --variants spense0.25-fp8 -- SPENSE_MMASP_PERSIST=0
run "spense fp8 persist3" 100 580 --batches 1,8 --variants spense0.25-fp8 -- SPENSE_MMASP_PERSIST=3
for c in 1x16 1x12 1x2; do
  python3 benchmarks/make_mmasp_cfg_table.py $( grep -q H100 $W/gpu.txt && echo src/spense/runtime/mmasp_cfg_h100.json || echo src/spense/runtime/mmasp_cfg_h200.json ) --capability 9.0 --out /tmp/cfg_$c.json --set fp8,cols,24576,4096,0.25,1=$c --set fp8,cols,24576,4096,0.25,8=$c >> $W/times.txt 2>&1
  run "spense fp8 gate_up $c" 80 580 --batches 1,8 --variants spense0.25-fp8 -- SPENSE_MMASP_CFG=/tmp/cfg_$c.json
done
t=$(( 560 - $(el) )); [ $t -gt 40 ] && timeout $t python -m pytest -q -x tests/test_mmasp_switches.py -k "launches_the_kernel or persistent" > $W/test.txt 2>&1
echo "switch tests rc=$? at $(el) s" >> $W/times.txt
run "spense fp8 default profile b8" 70 580 --batches 8 --profile --variants spense0.25-fp8 -- SPENSE_MMASP_PERSIST=0
run "spense fp8 persist3 profile b8" 70 580 --batches 8 --profile --variants spense0.25-fp8 -- SPENSE_MMASP_PERSIST=3
run "dense fp8 b8" 200 580 --batches 8 --variants dense-fp8 -- SPENSE_MMASP_PERSIST=0
cat $W/times.txt; grep -E "^qwen3|wall time|launch configs" $W/log.txt | cut -c1-300
