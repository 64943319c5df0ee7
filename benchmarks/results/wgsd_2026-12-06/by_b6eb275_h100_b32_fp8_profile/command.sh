#!/usr/bin/env bash
# forty-eighth stop, for a later one (any GPU; letter by): issue 12's B = 32 FP8 miss on the H100 (v61: 1.084x /
# 1.087x against 1.1x; BF16 1.175x). The 8B FP8 pair at B = 32 with the torch profiler (op classes of the step), then
# the 8B shapes' FP8 layers at M = 32 (dense baselines, mma.sp configs, warpgroup decode forms), to name the layers
# that hold the ratio down. LIM caps the run (default 570 s).
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-by}; mkdir -p $W; cp .carry/cmds/n25.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 32"
run() {  # name, cap, args...
  local n=$1 cap=$2; shift 2
  local t=$(( ${LIM:-570} - $(el) )); [ $t -gt $cap ] && t=$cap; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; timeout $t "$@" >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "dense fp8 B=32 profile" 110 $M --variants dense-fp8 --profile
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
run "spense fp8 B=32 profile" 110 $M --variants spense0.25-fp8 --profile
run "lb fp8 M=32" 150 python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 32 --ratios 0.25 \
  --axes cols --dtypes fp8 --backends dense,mmasp,wgsd --cfgs 1x4,1x8,2x8 --fp8-compiled-ms "" --out $W/lb_fp8
# (go.sh packs $OUT into one archive)
cat $W/times.txt; grep -E "^==|^qwen3|^ *(linear|attention|norm|gemm|other|total)" $W/log.txt | cut -c1-140 | head -60
grep -E "^8B" $W/log.txt | cut -c1-300
