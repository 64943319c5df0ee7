#!/usr/bin/env bash
# thirty-fourth stop, call 2: the GPU tests not run since beadfce (the DET change): tests/test_mmasp_switches.py,
# then the engine part's 4 tests cut in ae (RESUME); the extension built first (the tree with the exported one
# carried is over the device's 64 MiB)
set -u
T0=$(date +%s); W=$OUT/ak; mkdir -p $W; cp .carry/cmds/j2.sh $W/command.sh
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONPATH=src
s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log; cat $W/build.log
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
PART=switches LIMIT=$(( 420 - $(date +%s) + T0 )) OUT=$W bash benchmarks/run_gpu_tests.sh
PART=engine LIMIT=$(( 570 - $(date +%s) + T0 )) OUT=$W RESUME=benchmarks/results/wgsd_2026-12-04/ae_6eb7729_engine_gpu_tests/tests_engine.txt bash benchmarks/run_gpu_tests.sh
cd $OUT && tar czf ak.tgz ak && rm -rf ak
