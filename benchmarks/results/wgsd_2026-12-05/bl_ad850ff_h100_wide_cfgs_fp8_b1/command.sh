#!/usr/bin/env bash
# forty-fifth stop, on the machine bk left warm: the 8B FP8 shapes' launch configs at M = 1 swept with the wider CTAs
# too (as bk did at M = 8), a table over bk's (its M = 8 cells: o and down at 1x12), then Spense 25 % FP8 at B = 8 on
# the packaged table and on bk's (the other order than bk's), and B = 1 on the packaged table and on the new one;
# dense FP8 at B = 8 again last
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so
T0=$(date +%s); W=$OUT/${LETTER:-bl}; mkdir -p $W; cp .carry/cmds/n15.sh $W/command.sh; cp .carry/cmds/cfg_bk.json $W/
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x6,1x8,1x10,1x12,1x16,2x8,2x16
timeout 60 python3 benchmarks/linear_bench.py --shapes $S --ms 1 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf1 > /tmp/lbf1.txt 2>&1
echo "lb fp8 M=1 rc=$? at $(el) s" >> $W/times.txt
grep -v "^check " /tmp/lbf1.txt > $W/lb1.txt
python3 benchmarks/make_mmasp_cfg_table.py .carry/cmds/cfg_bk.json /tmp/lbf1.txt --dtypes fp8 --capability 9.0 --out $W/cfg_m1.json >> $W/times.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() {  # name, limit, batches, variant, env assignments...
  local n=$1 lim=$2 b=$3 v=$4; shift 4
  t=$(( 540 - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --batches $b --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 B=8 packaged" 80 8 spense0.25-fp8
run "spense fp8 B=8 cfg bk" 80 8 spense0.25-fp8 SPENSE_MMASP_CFG=.carry/cmds/cfg_bk.json
run "spense fp8 B=1 packaged" 80 1 spense0.25-fp8
run "spense fp8 B=1 cfg m1" 80 1 spense0.25-fp8 SPENSE_MMASP_CFG=$W/cfg_m1.json
run "dense fp8 B=8" 90 8 dense-fp8
run "dense fp8 B=1" 90 1 dense-fp8
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-110
python3 - $W/cfg_m1.json <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open("src/spense/runtime/mmasp_cfg_h100.json"))["mmasp_cfg"]
for k in sorted(new):
    if new[k] != old.get(k): print("cell", k, old.get(k), "->", new[k])
PY
