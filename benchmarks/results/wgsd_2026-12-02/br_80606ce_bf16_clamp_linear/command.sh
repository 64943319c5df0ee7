# one short call, on t1's extension (carried): linear_bench bf16 at M = 8, 16 on the gate_up and down shapes with
# SPENSE_MMASP_CLAMP at its default and off
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s)
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
mkdir -p $OUT/lb
for v in auto 0; do
  L=$(( 165 - ($(date +%s)-S) )); [ $L -gt 30 ] || break
  SPENSE_MMASP_CLAMP=$v timeout $L python3 benchmarks/linear_bench.py --out $OUT/lb/bf16_$v --shapes 8B.gate_up,8B.down,32B.gate_up,32B.down \
    --ms 8,16 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp > $OUT/lb/bf16_$v.txt 2>&1
  echo "lb $v rc=$? at $(( $(date +%s)-S )) s" | tee -a $OUT/lb/gpu.txt
done
tar czf $OUT/lb.tgz -C $OUT lb && rm -rf $OUT/lb
