#!/usr/bin/env bash
# fifty-second stop (any GPU; letter cw): the 32B FP8 cells of this GPU's launch-config table (on the H100 still the
# built-in table's RT = 2 configs of 2026-11-24) swept at M = 8 and 1 with today's kernels and the wide CTAs, a
# table over the packaged one, then the 32B FP8 pair at B = 8 (64 layers): dense FP8, Spense 25 % FP8 on the new
# table, on the packaged one. LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cw}; mkdir -p $W; cp .carry/cmds/n42.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
TABLE=src/spense/runtime/mmasp_cfg_h100.json; nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 && TABLE=src/spense/runtime/mmasp_cfg_h200.json
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-32b --layers 64 --batches 8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0"
echo "== dense fp8" >> $W/log.txt; timeout 200 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=32B.qkv,32B.o,32B.gate_up,32B.down; C=1x4,1x6,1x8,1x12,1x16,2x4,2x8
timeout 110 python3 benchmarks/linear_bench.py --shapes $S --ms 8,1 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf > /tmp/lbf.txt 2>&1
echo "lb fp8 rc=$? at $(el) s" >> $W/times.txt
grep -v "^check " /tmp/lbf.txt > $W/lbf.txt
python3 benchmarks/make_mmasp_cfg_table.py $TABLE $W/lbf.txt --capability 9.0 --dtypes fp8 --out $W/cfg_here.json >> $W/times.txt 2>&1
run() {  # name, limit, variant, env assignments...
  local n=$1 lim=$2 v=$3; shift 3
  t=$(( ${LIM:-570} - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 cfg here" 110 spense0.25-fp8 SPENSE_MMASP_CFG=$W/cfg_here.json
run "spense fp8 packaged" 100 spense0.25-fp8
cat $W/times.txt; grep -E "^==|^qwen3|launch configs from a cell" $W/log.txt | cut -c1-160
python3 - $W/cfg_here.json $TABLE <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open(sys.argv[2]))["mmasp_cfg"]
for k in sorted(new):
    if new[k] != old.get(k): print("cell", k, old.get(k), "->", new[k])
PY
