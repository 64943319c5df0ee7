#!/usr/bin/env bash
# second session, call 2: the dense layers' table (runtime/dense_table.json), the GPU tests of runtime.dense, then the
# 8B BF16 pair at B = 1, 8 with dense linears through runtime.dense, and dense again under SPENSE_DENSE_STREAM=0 (cuBLAS)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext
T0=$(date +%s); W=$OUT/w; mkdir -p $W; cp .carry/cmds/d2.sh $W/command.sh
( s=$(date +%s); timeout 420 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1; echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BP=$!
timeout 200 python benchmarks/bf16_dense_probe.py --table src/spense/runtime/dense_table.json > $W/table.txt 2>&1
echo "table rc=$? at $(( $(date +%s) - T0 )) s" >> $W/table.txt
cp src/spense/runtime/dense_table.json $W/ 2>/dev/null
timeout 90 python -m pytest -q -m gpu tests/test_dense.py -p no:cacheprovider > $W/tests.txt 2>&1
echo "tests rc=$? at $(( $(date +%s) - T0 )) s" >> $W/tests.txt
wait $BP
OUT=$W/e2e SPENSE_MMASP_SO=/tmp/spense_mmasp.so LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 \
  BUDGET=$(( 575 - ($(date +%s) - T0) )) ONLY="bw dense_bf16 ab_dense spense_bf16" AB_DENSE_ENV="SPENSE_DENSE_STREAM=0" \
  bash benchmarks/run_e2e.sh
cd $W && tar czf e2e.tgz e2e && rm -rf e2e
