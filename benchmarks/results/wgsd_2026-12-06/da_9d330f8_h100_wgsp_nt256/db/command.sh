#!/usr/bin/env bash
# fifty-third stop (any GPU; letter from $LETTER): the prefill GEMM on CTAs of 8 row tiles x 256 tokens
# (SPENSE_WGSP_NT=256) through the extension: its GPU test (bits against the plain form's) and the prefill test beside,
# then prefill_bench BF16 at M = 2048 on the 8B / 32B gate_up and down shapes, timings in turn (--rounds 4), its
# column spense_wgsp_nt256 beside the plain form and cuBLAS, clocks logged.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-db}; mkdir -p $W; cp .carry/cmds/n48.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 120 python3 -m pytest -v -m gpu tests/test_wgsp.py -k "256 or prefill_matches" -p no:cacheprovider \
  > $W/pytest.txt 2>&1; echo "pytest rc=$? at $(el) s" >> $W/times.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv \
  -lms 100 > $W/clocks.csv 2>&1 &
CL=$!
t=$(( ${LIM:-400} - $(el) )); [ $t -gt 20 ] && timeout $t python3 benchmarks/prefill_bench.py --out $W \
  --dtypes bf16 --ms 2048 --shapes 8B.gate_up,32B.gate_up,8B.down,32B.down --rounds 4 > $W/log.txt 2>&1
echo "prefill_bench rc=$? at $(el) s" >> $W/times.txt
kill $CL; cat $W/times.txt; grep -E "PASSED|FAILED|ERROR" $W/pytest.txt | cut -c1-120
grep "M=" $W/log.txt | sed 's/, unpack.*wgsp / wgsp /; s/, rel diff 0.0e+00//g' | cut -c1-400
