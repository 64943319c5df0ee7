#!/usr/bin/env bash
# forty-fifth stop, on the machine bl left warm: the 8B BF16 shapes' launch configs at M = 8 swept with the wider CTAs
# too, a table over bl's (its FP8 cells), then Spense 25 % BF16 at B = 8 on the packaged table and on the new one, and
# dense BF16 at B = 8 beside
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so
T0=$(date +%s); W=$OUT/${LETTER:-bm}; mkdir -p $W; cp .carry/cmds/n16.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x6,1x8,1x10,1x12,1x16,2x8,2x16
timeout 60 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes bf16 --backends mmasp --cfgs $C --out /tmp/lbb > /tmp/lbb.txt 2>&1
echo "lb bf16 M=8 rc=$? at $(el) s" >> $W/times.txt
grep -v "^check " /tmp/lbb.txt > $W/lb.txt
python3 benchmarks/make_mmasp_cfg_table.py .carry/cmds/cfg_bl.json /tmp/lbb.txt --dtypes bf16 --capability 9.0 --out $W/cfg_bf16.json >> $W/times.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 8"
run() {  # name, limit, variant, env assignments...
  local n=$1 lim=$2 v=$3; shift 3
  t=$(( 400 - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense bf16 B=8 cfg bf16" 90 spense0.25 SPENSE_MMASP_CFG=$W/cfg_bf16.json
run "spense bf16 B=8 packaged" 90 spense0.25
run "dense bf16 B=8" 90 dense
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-110
python3 - $W/cfg_bf16.json <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open("src/spense/runtime/mmasp_cfg_h100.json"))["mmasp_cfg"]
for k in sorted(new):
    if new[k] != old.get(k): print("cell", k, old.get(k), "->", new[k])
PY
