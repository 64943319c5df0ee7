#!/usr/bin/env bash
# fifty-second stop (any GPU; letter cy): over cw's table (.carry/cmds/cfg_cw.json), the 32B BF16 cells at M = 8 and 1
# and the 32B FP8 cells at M = 4 and 16 swept (linear_bench, wide CTAs), a table of all; then the 32B FP8 pair at
# B = 1, 8 on 32 of 64 layers (dense FP8, Spense 25 % FP8 on the new table) and the 32B BF16 pair at B = 8 on 16
# layers (dense, Spense 25 % on the new table, on the packaged one). LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cy}; mkdir -p $W; cp .carry/cmds/n44.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=32B.qkv,32B.o,32B.gate_up,32B.down; C=1x4,1x6,1x8,1x12,1x16,2x4,2x8
timeout 80 python3 benchmarks/linear_bench.py --shapes $S --ms 8,1 --ratios 0.25 --axes cols --dtypes bf16 --backends mmasp --cfgs $C --out /tmp/lbb > /tmp/lbb.txt 2>&1
echo "lb bf16 rc=$? at $(el) s" >> $W/times.txt; grep -v "^check " /tmp/lbb.txt > $W/lbb.txt
timeout 80 python3 benchmarks/linear_bench.py --shapes $S --ms 4,16 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf > /tmp/lbf.txt 2>&1
echo "lb fp8 rc=$? at $(el) s" >> $W/times.txt; grep -v "^check " /tmp/lbf.txt > $W/lbf.txt
python3 benchmarks/make_mmasp_cfg_table.py .carry/cmds/cfg_cw.json $W/lbb.txt $W/lbf.txt --capability 9.0 --out $W/cfg_new.json >> $W/times.txt 2>&1
run() {  # name, limit, variant, layers, batches, env assignments...
  local n=$1 lim=$2 v=$3 l=$4 b=$5; shift 5
  t=$(( ${LIM:-570} - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt
  env "$@" timeout $t python -m spense.engine.measure --model qwen3-32b --layers $l --batches $b --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0 --variants $v >> $W/log.txt 2>&1
  echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "fp8 dense 32L" 120 dense-fp8 32 1,8 X=1
run "fp8 spense new 32L" 110 spense0.25-fp8 32 1,8 SPENSE_MMASP_CFG=$W/cfg_new.json
run "bf16 dense 16L" 70 dense 16 8 X=1
run "bf16 spense new 16L" 70 spense0.25 16 8 SPENSE_MMASP_CFG=$W/cfg_new.json
run "bf16 spense packaged 16L" 70 spense0.25 16 8 X=1
cat $W/times.txt; grep -E "^==|^qwen3|launch configs from a cell" $W/log.txt | cut -c1-150
python3 - $W/cfg_new.json src/spense/runtime/mmasp_cfg_h100.json <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open(sys.argv[2]))["mmasp_cfg"]
for k in sorted(new):
    if new[k] != old.get(k): print("cell", k, old.get(k), "->", new[k])
PY
