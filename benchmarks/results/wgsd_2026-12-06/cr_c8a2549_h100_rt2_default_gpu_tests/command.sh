#!/usr/bin/env bash
# fifty-first stop (any GPU; letter cr): SPENSE_MMASP_RT2_256 on by default and the H100 table's five RT = 1 cells:
# the extension, the switch's GPU tests (same bits in 0 / 1 / 2 / unset; unset launches the 256-thread kernel), the
# autotune GPU tests, then the engine's GPU tests (greedy tokens against the reference). LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cr}; mkdir -p $W; cp .carry/cmds/n38.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 150 python3 -m pytest -v -m gpu tests/test_mmasp_switches.py -k "rt2 or RT2" -p no:cacheprovider \
  > $W/pytest.txt 2>&1; echo "pytest switches rc=$? at $(el) s" >> $W/times.txt
timeout 100 python3 -m pytest -v -m gpu tests/test_autotune.py -p no:cacheprovider >> $W/pytest.txt 2>&1
echo "pytest autotune rc=$? at $(el) s" >> $W/times.txt
t=$(( ${LIM:-480} - $(el) )); [ $t -gt 30 ] && timeout $t python3 -m pytest -v -m gpu tests/test_engine_gpu.py \
  -p no:cacheprovider > $W/tests_engine.txt 2>&1; echo "pytest engine rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -hE " PASSED| FAILED| ERROR" $W/pytest.txt $W/tests_engine.txt | cut -c1-150
tail -2 $W/pytest.txt $W/tests_engine.txt
