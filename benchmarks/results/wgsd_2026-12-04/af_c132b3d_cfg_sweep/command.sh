#!/usr/bin/env bash
# thirty-third stop, call 1: the extension built in the background while tests/test_dense.py's GPU tests run on the
# device_index refactor; then the register kernel's launch configs swept per shape (linear_bench logs every config's
# time: columns xf, xp = x_perm, the engine's operand at M <= 8, and xh / xhp on x's f16 operand for e4m3), warps 3-16
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/af; mkdir -p $W; cp .carry/cmds/i1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
timeout 150 python -m pytest -q -m gpu tests/test_dense.py tests/test_shapes.py -p no:cacheprovider > $W/dense_gpu_tests.txt 2>&1
echo "dense gpu tests rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt; cat $W/build.log | tail -2
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
C=1x3,1x4,1x5,1x6,1x7,1x8,1x9,1x10,1x12,1x16
t=$(( 400 - $(el) ))
timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.down,8B.gate_up --ms 1,8 --ratios 0.25 --axes cols \
  --dtypes bf16 --backends mmasp --cfgs $C --out $W/lbb > $W/lbb.txt 2>&1
echo "lb bf16 rc=$? at $(el) s" >> $W/times.txt
t=$(( 575 - $(el) ))
[ $t -gt 30 ] && timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.down,8B.gate_up --ms 1,8 --ratios 0.25 \
  --axes cols --dtypes fp8 --backends mmasp --cfgs 1x4,1x5,1x6,1x7,1x8,1x10,1x12 --out $W/lbf > $W/lbf.txt 2>&1
echo "lb fp8 rc=$? at $(el) s" >> $W/times.txt
mkdir -p /tmp/keep && cp /tmp/spense_mmasp.so* /tmp/keep/ 2>/dev/null
cat $W/times.txt; tail -3 $W/dense_gpu_tests.txt
for f in $W/lbb.txt $W/lbf.txt; do grep -E "^cfg " $f | awk '{print $2,$3,$4,$5,$6,$7,$8}' | sort -k1,1 -k4,4 -k5,5 -k7,7n | awk '{k=$1" "$2" "$3" "$4" "$5; if (k!=p) {printf "\n%s:", k; p=k} printf " %s=%s", $6, $7}'; echo; grep -E "^8B" $f | cut -c1-200; grep -i "error\|fail" $f | head -5; done
cd $OUT && tar czf af.tgz af && rm -rf af
