#!/usr/bin/env bash
# fiftieth stop (any GPU; letter cn): prefill_bench with its timings taken in turn (--rounds 4, median; cm found
# the GPU at its power cap under these GEMMs, so the second of two back-to-back timings ran slower), BF16 at
# M = 2048 on the 8B / 32B gate_up and down shapes (issue 9's 1.2x), SM clocks logged every 100 ms. LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cn}; mkdir -p $W; cp .carry/cmds/n34.sh $W/command.sh
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv \
  -lms 100 > $W/clocks.csv 2>&1 &
CL=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 150 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(( $(date +%s) - T0 )) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( ${LIM:-150} - $(date +%s) + T0 )); [ $t -gt 20 ] && timeout $t python3 benchmarks/prefill_bench.py --out $W \
  --dtypes bf16 --ms 2048 --shapes 8B.gate_up,32B.gate_up,8B.down,32B.down --rounds 4 > $W/log.txt 2>&1
echo "prefill_bench rc=$? at $(( $(date +%s) - T0 )) s" >> $W/times.txt
kill $CL; cat $W/times.txt; grep "M=" $W/log.txt | sed 's/, unpack.*wgsp / wgsp /' | cut -c1-160
