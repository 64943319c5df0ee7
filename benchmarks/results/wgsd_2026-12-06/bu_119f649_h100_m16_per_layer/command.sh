#!/usr/bin/env bash
# forty-seventh stop: issue 9's M = 16 per layer on today's kernels and tables (last measured before the new launch
# configs: FP8 0.93-1.12x, bm; BF16 8B 1.27-1.29x, aa) - gate_up and down of 8B and 32B at M = 16, 25 % dense
# columns, FP8 and BF16, our kernels (mma.sp over configs, warpgroup decode forms) against the dense baselines
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bu}; mkdir -p $W; cp .carry/cmds/n23.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=8B.gate_up,8B.down,32B.gate_up,32B.down; C=1x4,1x8,1x12,1x16,2x8
for dt in fp8 bf16; do
  t=$(( ${LIM:-570} - $(el) )); [ $t -gt 140 ] && t=140; [ $t -lt 40 ] && { echo "$dt skipped at $(el) s" >> $W/times.txt; continue; }
  timeout $t python3 benchmarks/linear_bench.py --shapes $S --ms 16 --ratios 0.25 --axes cols --dtypes $dt \
    --backends dense,mmasp,wgsd --cfgs $C --fp8-compiled-ms "" --out $W/lb_$dt > $W/lb_$dt.txt 2>&1
  echo "lb $dt rc=$? at $(el) s" >> $W/times.txt
done
cat $W/times.txt; grep -v "^check " $W/lb_fp8.txt $W/lb_bf16.txt | cut -c1-330
