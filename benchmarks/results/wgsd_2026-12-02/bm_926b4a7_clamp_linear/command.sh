# one call: the extension with SPENSE_MMASP_CLAMP (built in the background by run_e2e.sh while dense FP8 runs), the 8B
# FP8 pair end to end; then linear_bench fp8 with the switch on (auto) and, in
# what is left, off, on the eight shapes at M = 1, 8, 16
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
mkdir -p $OUT/e2e
OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=380 ONLY="bw dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh
echo "e2e done at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
[ -f $OUT/e2e/ext.tgz ] && mv $OUT/e2e/ext.tgz $OUT/ext.tgz
export PYTHONPATH=src SPENSE_MMASP_SO=/tmp/spense_mmasp.so
mkdir -p $OUT/lb
for v in auto 0; do
  [ $v = auto ] && fc=1 || fc=""  # the compiled dequant + linear among the FP8 dense baseline's candidates at M = 1 (auto's run)
  t=$(( 585 - ($(date +%s)-S) )); [ $v = auto ] && [ $t -gt 150 ] && t=150; [ $t -lt 40 ] && break
  SPENSE_MMASP_CLAMP=$v timeout $t python3 benchmarks/linear_bench.py --out $OUT/lb/fp8_$v --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.qkv,32B.o,32B.gate_up,32B.down \
    --ms 1,8,16 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,mmasp --fp8-compiled-ms "$fc" > $OUT/lb/fp8_$v.txt 2>&1
  echo "lb $v rc=$? at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
done
echo "end at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
tar czf $OUT/e2e.tgz -C $OUT e2e lb && rm -rf $OUT/e2e $OUT/lb
