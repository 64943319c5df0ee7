#!/usr/bin/env bash
# fifty-first stop (any GPU; letter cs): the tail split of the prefill GEMM (SPENSE_WGSP_TAIL=1: a layer's last row
# blocks on CTAs of 8 row tiles where that fills its last wave). The extension, the GPU tests (its bits against the
# plain form's, two launches where it splits; the persistent and prefill tests beside), memcheck of it, then
# prefill_bench BF16 at M = 2048 on the 8B / 32B gate_up and down shapes, timings in turn (--rounds 4), clocks logged.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cs}; mkdir -p $W; cp .carry/cmds/n39.sh .carry/cmds/memcheck_tail.py $W/
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 120 python3 -m pytest -v -m gpu tests/test_wgsp.py -k "tail or persistent or prefill_matches" -p no:cacheprovider \
  > $W/pytest.txt 2>&1; echo "pytest rc=$? at $(el) s" >> $W/times.txt
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 3 python3 .carry/cmds/memcheck_tail.py > $W/memcheck.txt 2>&1
echo "memcheck rc=$? at $(el) s" >> $W/times.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv \
  -lms 100 > $W/clocks.csv 2>&1 &
CL=$!
t=$(( ${LIM:-400} - $(el) )); [ $t -gt 20 ] && timeout $t python3 benchmarks/prefill_bench.py --out $W \
  --dtypes bf16 --ms 2048 --shapes 8B.gate_up,32B.gate_up,8B.down,32B.down --rounds 4 > $W/log.txt 2>&1
echo "prefill_bench rc=$? at $(el) s" >> $W/times.txt
kill $CL; cat $W/times.txt; grep -E "PASSED|FAILED|ERROR" $W/pytest.txt | cut -c1-120; tail -4 $W/memcheck.txt
grep "M=" $W/log.txt | sed 's/, unpack.*wgsp / wgsp /; s/, rel diff 0.0e+00//g' | cut -c1-330
