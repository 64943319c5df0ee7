#!/usr/bin/env bash
# forty-first stop, call 2 (8B, 36 layers): on an H100 the engine's mma.sp launch configs come from the built-in table
# of 2026-11-24 (8B.gate_up e4m3: 2 row tiles, 8 warps; 0.60 of the copy rate in au).  Here: the launch-config sweep on
# the 8B shapes (linear_bench, FP8 then BF16, M = 1, 8, 16) -> this GPU's table (make_mmasp_cfg_table.py), then Spense
# 25 % FP8 at B = 1, 8 on the built-in configs and on that table (SPENSE_MMASP_CFG), dense FP8 beside for the ratio;
# then, time left, SPENSE_ATTN_MERGE_LATE=1 on the new table and the BF16 pair on it
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/av; mkdir -p $W; cp .carry/cmds/n3.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> /tmp/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 1,8"
timeout 170 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; tail -1 /tmp/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x4,1x5,1x6,1x8,2x4,2x8
timeout 70 python3 benchmarks/linear_bench.py --shapes $S --ms 1,8,16 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf > /tmp/lbf.txt 2>&1
echo "lb fp8 rc=$? at $(el) s" >> $W/times.txt
timeout 50 python3 benchmarks/linear_bench.py --shapes $S --ms 1,8,16 --ratios 0.25 --axes cols --dtypes bf16 --backends mmasp --cfgs $C --out /tmp/lbb > /tmp/lbb.txt 2>&1
echo "lb bf16 rc=$? at $(el) s" >> $W/times.txt
cat /tmp/lbf.txt /tmp/lbb.txt | grep -v "^check " > $W/lb.txt
python3 benchmarks/make_mmasp_cfg_table.py /tmp/lbf.txt /tmp/lbb.txt --capability 9.0 --out $W/cfg_here.json >> $W/times.txt 2>&1
echo "table rc=$? at $(el) s" >> $W/times.txt
run() {  # name, limit, variant, env assignments...
  local n=$1 lim=$2 v=$3; shift 3
  t=$(( 440 - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 builtin cfg" 90 spense0.25-fp8 SPENSE_ATTN_MERGE_LATE=0
run "spense fp8 cfg here" 90 spense0.25-fp8 SPENSE_MMASP_CFG=$W/cfg_here.json
run "spense fp8 cfg here merge late" 90 spense0.25-fp8 SPENSE_MMASP_CFG=$W/cfg_here.json SPENSE_ATTN_MERGE_LATE=1
run "spense bf16 cfg here" 90 spense0.25 SPENSE_MMASP_CFG=$W/cfg_here.json
run "dense bf16" 80 dense SPENSE_ATTN_MERGE_LATE=0
cat $W/times.txt; grep -E "^qwen3|launch configs" $W/log.txt | cut -c1-200; grep -E "^(8|32)B" $W/lb.txt | cut -c1-160 | head -40
