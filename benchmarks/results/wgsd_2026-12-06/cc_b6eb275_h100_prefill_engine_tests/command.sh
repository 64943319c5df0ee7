#!/usr/bin/env bash
# forty-ninth stop (any GPU; letter cc): issue 9's prefill per layer again on today's kernels (the figure of record is
# v16's, H200, 2026-12-01 at 5b441ab; the warp-specialized kernel's TPC rule and launch changed since), BF16 and FP8,
# M = 512 / 2048 / 8192, the 8B and 32B shapes, weights rotated past L2, in one run beside cuBLAS and the FP8 dense
# baseline; then the engine's GPU tests (compiled steps) with what time is left. LIM caps the run (default 560 s).
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cc}; mkdir -p $W; cp .carry/cmds/n26.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 300 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( ${LIM:-560} - $(el) - 20 )); [ $t -gt 360 ] && t=360
timeout $t python3 benchmarks/prefill_bench.py --out $W/prefill --ms 512,2048,8192 \
  --shapes 8B.gate_up,8B.down,32B.gate_up,32B.down,8B.qkv,8B.o > $W/prefill_log.txt 2>&1
echo "prefill_bench rc=$? at $(el) s" >> $W/times.txt
t=$(( ${LIM:-560} - $(el) )); [ $t -gt 40 ] && OUT=$W PART=engine LIMIT=$t SPENSE_COMMIT=${SPENSE_COMMIT:-unknown} \
  bash benchmarks/run_gpu_tests.sh > /dev/null 2>&1
echo "engine tests done at $(el) s" >> $W/times.txt
cat $W/times.txt; cat $W/prefill/prefill_bench.md 2>/dev/null | head -60; tail -3 $W/gpu_engine.txt 2>/dev/null
grep -h " FAILED\| ERROR" $W/tests_engine*.txt 2>/dev/null | head; grep -c " PASSED" $W/tests_engine*.txt 2>/dev/null
