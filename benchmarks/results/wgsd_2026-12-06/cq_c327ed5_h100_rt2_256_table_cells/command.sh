#!/usr/bin/env bash
# fifty-first stop (any GPU; letter cq): (1) SPENSE_MMASP_RT2_256 where the H100's launch-config table takes RT = 2
# (8B.qkv, 32B.qkv, 32B.o, 32B.down at M = 4 / 16): linear_bench bf16 mmasp, configs 1x4, 1x8, 2x4, 2x8, the switch
# 0, 2, 0, 2 in turn (is the best config faster under 2?); (2) memcheck of the persistent prefill forms.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cq}; mkdir -p $W; cp .carry/cmds/n37.sh .carry/cmds/memcheck_ps.py $W/
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
for v in 0 2 0 2; do
  t=$(( ${LIM:-400} - $(el) )); [ $t -gt 60 ] && t=60; [ $t -lt 30 ] && break
  SPENSE_MMASP_RT2_256=$v timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,32B.qkv,32B.o,32B.down \
    --ms 4,16 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp --cfgs 1x4,1x8,2x4,2x8 --out /tmp/lb_$v \
    > /tmp/lb_$v.txt 2>&1
  echo "lb rt2_256=$v rc=$? at $(el) s" >> $W/times.txt; grep -E "^cfg .* xf |^8B|^32B" /tmp/lb_$v.txt | sed "s/^/rt2_256=$v /" >> $W/lb.txt
done
t=$(( ${LIM:-400} - $(el) )); [ $t -gt 150 ] && t=150
[ $t -gt 30 ] && timeout $t compute-sanitizer --tool memcheck --error-exitcode 3 python3 .carry/cmds/memcheck_ps.py \
  > $W/memcheck.txt 2>&1; echo "memcheck rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; tail -8 $W/memcheck.txt
grep " xf " $W/lb.txt | awk '{print $1, $3, $4, $8, $10, $11, $12}' | sort -k2,2 -k4,4 -k5,5 | cut -c1-100
