#!/usr/bin/env bash
# fiftieth stop (any GPU; letter cj): SPENSE_WGSD_EXP 104449 the default (bit 65536: the FP8 stream-K kernels on tiles
# of 32 tokens drain each ring slot before the next slot's A). The extension at the new default; the GPU tests that
# run it (tests/test_wgsp_pdl.py, the rest of tests/test_fp8.py that ce's limit cut, the engine's 19 with greedy tokens
# against the reference); then the stream-K grid (SPENSE_WGSD_SK_SPLIT) swept per 8B shape at M = 32 in e4m3 under
# the new default (o: 1.00x of FP8 dense in cg). LIM caps the run (default 560 s).
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cj}; mkdir -p $W; cp .carry/cmds/n32.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total --format=csv > $W/gpu.txt 2>&1; echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python3 -c "from spense.runtime import wgsp; print('SPENSE_WGSD_EXP default', wgsp.wgsd_exp())" >> $W/times.txt 2>&1
timeout 130 python3 -m pytest -v -m gpu tests/test_wgsp_pdl.py tests/test_fp8.py -p no:cacheprovider > $W/pytest.txt 2>&1
echo "pytest rc=$? at $(el) s" >> $W/times.txt
SPENSE_COMMIT=${SPENSE_COMMIT:-unknown} PART=engine OUT=$W timeout 220 bash benchmarks/run_gpu_tests.sh > /dev/null 2>&1
echo "engine tests rc=$? at $(el) s" >> $W/times.txt
for sp in 0 -1 -3 2 4 8; do
  t=$(( ${LIM:-560} - $(el) )); [ $t -gt 60 ] && t=60; [ $t -lt 30 ] && break
  SPENSE_WGSD_SK_SPLIT=$sp timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 32 \
    --ratios 0.25 --axes cols --dtypes fp8 --backends wgsd --fp8-compiled-ms "" --out /tmp/lb_sp$sp > /tmp/lb_sp$sp.txt 2>&1
  echo "split $sp rc=$? at $(el) s" >> $W/times.txt; grep -E "^8B" /tmp/lb_sp$sp.txt | sed "s/^/split=$sp /" >> $W/split.txt
done
cat $W/times.txt; echo "passed $(grep -c ' PASSED' $W/pytest.txt) failed $(grep -c ' FAILED' $W/pytest.txt)"; tail -1 $W/pytest.txt
grep -h " FAILED\| ERROR" $W/pytest.txt | head; tail -4 $W/tests_engine.txt 2>/dev/null
sed 's/  lim=.*//' $W/split.txt 2>/dev/null | cut -c1-150
