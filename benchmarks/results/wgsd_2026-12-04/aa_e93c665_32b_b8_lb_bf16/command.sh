#!/usr/bin/env bash
# thirty-second stop, call 1: the 32B BF16 pair at B = 8 (v47 ran out of time before Spense's B = 8 row); the extension
# built in the background meanwhile; tests/test_dense.py's GPU tests (written after v47's runs) while it builds; then
# linear_bench in BF16 with the dense column = the faster of cuBLAS and runtime.dense's streaming kernel
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/aa; mkdir -p $W; cp .carry/cmds/h1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
touch /tmp/noext.so  # the dense stages need no extension: run_e2e.sh starts no second build
SPENSE_MMASP_SO=/tmp/noext.so OUT=$W/e2e MODEL=qwen3-32b LAYERS=64 BATCHES=8 STAGE_SCALE=3 NORESERVE=1 BUDGET=200 \
  ONLY="bw dense_bf16" bash benchmarks/run_e2e.sh
echo "dense done at $(el) s" >> $W/times.txt
timeout 100 python -m pytest -q -m gpu tests/test_dense.py -p no:cacheprovider > $W/dense_gpu_tests.txt 2>&1
echo "dense gpu tests rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt
mkdir -p .carry/ext && cp /tmp/spense_mmasp.so /tmp/spense_mmasp.so.src .carry/ext/ 2>/dev/null
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
OUT=$W/e2e MODEL=qwen3-32b LAYERS=64 BATCHES=8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 450 - $(el) )) \
  ONLY="spense_bf16" bash benchmarks/run_e2e.sh
echo "spense done at $(el) s" >> $W/times.txt
t=$(( 575 - $(el) ))
[ $t -gt 20 ] && timeout $t python3 benchmarks/linear_bench.py --shapes 8B.gate_up,8B.down,32B.gate_up,32B.down,8B.qkv,8B.o,32B.qkv,32B.o \
  --ms 1,8,16,32,64 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp,wgsd --out $W/lb > $W/lb.txt 2>&1
echo "lb rc=$? at $(el) s" >> $W/times.txt
rm -f $W/e2e/ext.tgz $W/*.png
cat $W/times.txt; tail -5 $W/dense_gpu_tests.txt; grep -h "step" $W/e2e/log.txt | cut -c1-220; grep -hE "^(8|32)B" $W/lb.txt | sed -E 's/ +lim=.*//' | cut -c1-200
cd $OUT && tar czf aa.tgz aa && rm -rf aa
