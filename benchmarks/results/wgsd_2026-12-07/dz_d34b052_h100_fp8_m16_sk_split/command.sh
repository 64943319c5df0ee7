#!/usr/bin/env bash
# fifty-ninth stop, second call. On an H200: r3.sh (attention A/B, B = 8 profiles, the BF16 M = 8 launch configs).
# Elsewhere (an H100): issue 9's FP8 misses at M = 16 (8B.gate_up, 32B.down; 25 % dense columns), the stream-K decode
# form's CTA counts (SPENSE_WGSD_SK_SPLIT -3 default, -1, 0, 2, 4) against the FP8 dense baseline, per layer.
if nvidia-smi -L | grep -q H200; then exec bash .carry/cmds/r3.sh; fi
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
W=$OUT/${LETTER2:-dz}; mkdir -p $W; cp .carry/cmds/r7.sh $W/command.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "extension rc=$? at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
for sp in -3 -1 0 2 4; do
  t=$(( 520 - $(el) )); [ $t -gt 80 ] && t=80; [ $t -lt 25 ] && break
  SPENSE_WGSD_SK_SPLIT=$sp timeout $t python3 benchmarks/linear_bench.py --shapes 8B.gate_up,32B.down --ms 16 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-compiled-ms "" --out /tmp/lb_sp$sp > /tmp/lb_sp$sp.txt 2>&1
  echo "split $sp rc=$? at $(el) s" >> $W/times.txt
  grep -E "^8B|^32B|copy" /tmp/lb_sp$sp.txt | sed "s/^/split=$sp /" >> $W/split.txt
done
cat $W/times.txt; cut -c1-200 $W/split.txt
