#!/usr/bin/env bash
# forty-fifth stop: the GPU same-bits tests of the attention at HEAD (the new defaults together: cap 128 with 2 stages);
# then the H100's mma.sp launch configs of the 8B FP8 shapes swept again with the wider CTAs the H200's table takes at
# M = 8 (1x10, 1x12, 1x16, 2x16: never swept on an H100; av swept 1x4-2x8), a table from that sweep over the packaged
# one (make_mmasp_cfg_table.py --dtypes fp8), and Spense 25 % FP8 at B = 8 on the packaged table and on the new one,
# dense FP8 beside for the ratio (8B shape, 36 layers)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bk}; mkdir -p $W; cp .carry/cmds/n14.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
timeout 120 python -m pytest -q -x tests/test_attention.py -k gpu -p no:cacheprovider > $W/pytest.txt 2>&1; echo "gpu tests rc=$? at $(el) s" >> $W/times.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 8"
echo "== dense fp8" >> $W/log.txt; timeout 150 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense rc=$? at $(el) s" >> $W/times.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x6,1x8,1x10,1x12,1x16,2x8,2x16
timeout 80 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf > /tmp/lbf.txt 2>&1
echo "lb fp8 rc=$? at $(el) s" >> $W/times.txt
grep -v "^check " /tmp/lbf.txt > $W/lb.txt
python3 benchmarks/make_mmasp_cfg_table.py src/spense/runtime/mmasp_cfg_h100.json /tmp/lbf.txt --dtypes fp8 --capability 9.0 --out $W/cfg_here.json >> $W/times.txt 2>&1
echo "table rc=$? at $(el) s" >> $W/times.txt
run() {  # name, limit, variant, env assignments...
  local n=$1 lim=$2 v=$3; shift 3
  t=$(( 560 - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 cfg here" 95 spense0.25-fp8 SPENSE_MMASP_CFG=$W/cfg_here.json
run "spense fp8 packaged cfg" 95 spense0.25-fp8
cat $W/times.txt; tail -3 $W/pytest.txt; grep -E "^==|^qwen3|launch configs" $W/log.txt | cut -c1-160
python3 - $W/cfg_here.json <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open("src/spense/runtime/mmasp_cfg_h100.json"))["mmasp_cfg"]
for k in sorted(new):
    if new[k] != old.get(k): print("cell", k, old.get(k), "->", new[k])
PY
