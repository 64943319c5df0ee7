#!/usr/bin/env bash
# fiftieth stop, for a later one (any GPU; a fresh letter): SPENSE_MMASP_RT2_256 (the bf16 register kernel at RT = 2
# bound to 256 threads: no spills, 174-186 registers, half the warps a SM). The extension, its GPU tests (same bits
# in "0" / "1" / "2"; the launch test's RT2_256 case), then linear_bench bf16 mmasp at M = 8 / 16 on the 8B shapes
# the engine runs and 32B.down, configs 1x4, 1x8, 2x4, 2x8 (the H100 table's kinds), the switch 0, 1, 2, 0 in turn:
# does RT = 2 without spills beat the best config the table holds? (`cfg ...` lines: every config's time.)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cx}; mkdir -p $W; cp .carry/cmds/n35.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 200 python3 -m pytest -v -m gpu tests/test_mmasp_switches.py -k "rt2 or RT2" -p no:cacheprovider \
  > $W/pytest.txt 2>&1; echo "pytest rc=$? at $(el) s" >> $W/times.txt
for v in 0 1 2 0; do
  t=$(( ${LIM:-560} - $(el) )); [ $t -gt 70 ] && t=70; [ $t -lt 35 ] && break
  SPENSE_MMASP_RT2_256=$v timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.down \
    --ms 8,16 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp --cfgs 1x4,1x8,2x4,2x8 --out /tmp/lb_$v \
    > /tmp/lb_$v.txt 2>&1
  echo "lb rt2_256=$v rc=$? at $(el) s" >> $W/times.txt; grep -E "^cfg .* xf |^8B|^32B" /tmp/lb_$v.txt | sed "s/^/rt2_256=$v /" >> $W/lb.txt
done
cat $W/times.txt; grep -E "PASSED|FAILED|ERROR" $W/pytest.txt | cut -c1-140
grep " xf " $W/lb.txt | awk '{print $1, $3, $4, $8, $10, $11, $12}' | sort -k2,2 -k5,5 -k6,6 | cut -c1-120
