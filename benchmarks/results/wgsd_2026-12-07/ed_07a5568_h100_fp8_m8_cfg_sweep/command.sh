#!/usr/bin/env bash
# sixty-second stop: r4.sh against the running GPU's own packaged table ($TB): the e4m3 launch configs of the four 8B
# shapes at M = 8 swept on today's kernels; dense FP8 and Spense 25 % FP8 at B = 8 (36 layers), and Spense again on the
# table made from that sweep, where a cell changed.
TB=src/spense/runtime/mmasp_cfg_h100.json; nvidia-smi -L | grep -q H200 && TB=src/spense/runtime/mmasp_cfg_h200.json
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
W=$OUT/${LETTER:-dz}; mkdir -p $W; cp .carry/cmds/r4h.sh $W/command.sh
[ -f /tmp/spense_mmasp.so ] || (timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0 --batches 8"
run() {  # name, end (s since start), limit, variant, env assignments...
  local n=$1 end=$2 lim=$3 v=$4; shift 4
  local t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "dense fp8" 300 90 dense-fp8
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 340 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x4,1x5,1x6,1x8,1x10,1x12,1x16,2x8,2x16
timeout 70 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf > /tmp/lbf.txt 2>&1
echo "lb fp8 M=8 rc=$? at $(el) s" >> $W/times.txt
grep -v "^check " /tmp/lbf.txt > $W/lbf.txt
python3 benchmarks/make_mmasp_cfg_table.py $TB /tmp/lbf.txt --dtypes fp8 --capability 9.0 --out $W/cfg_fp8_m8.json >> $W/times.txt 2>&1
CH=$(python3 - $W/cfg_fp8_m8.json $TB <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open(sys.argv[2]))["mmasp_cfg"]
ch = [k for k in sorted(new) if new[k] != old.get(k)]
for k in ch: print("cell", k, old.get(k), "->", new[k], file=sys.stderr)
print(len(ch))
PY
2>> $W/times.txt)
echo "changed cells: '$CH'" >> $W/times.txt
if [ "${CH:-0}" != 0 ]; then
  run "spense fp8 cfg_fp8_m8" 480 90 spense0.25-fp8 SPENSE_MMASP_CFG=$W/cfg_fp8_m8.json
  run "spense fp8 packaged" 580 90 spense0.25-fp8
else
  run "spense fp8 packaged" 580 90 spense0.25-fp8
fi
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-160
