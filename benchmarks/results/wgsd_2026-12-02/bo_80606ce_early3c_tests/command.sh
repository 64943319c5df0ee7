# one call: the extension at HEAD (background build, exported as ext.tgz); meanwhile the harness's early3c column
# (EARLY = 19) beside early3 on the one-wave e4m3 grids, and gpt-fast's compiled dense step at B = 8; then the GPU
# tests of the kernel switches, memcheck under SPENSE_MMASP_EARLY=19, linear_bench fp8 EARLY auto / 19 if time is left
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s)
el() { echo $(( $(date +%s)-S )); }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
mkdir -p /tmp/f
( PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 400 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1; echo "build_f rc=$? $(el) s" >> /tmp/build_f.txt ) &
P1=$!
tar xzf .carry/hb/hb.tgz -C /tmp
R=$OUT/harness.txt
echo "# harness early3c (EARLY = 19) beside early3, ${SPENSE_COMMIT:-HEAD}; $(date -u +%FT%TZ); args N K 0.25 c 1 M 1 8 8 30 xf" > $R
for pass in 1 2; do
  for shape in "6144 4096" "4096 4096" "4096 12288" "5120 8192" "5120 25600"; do
    for M in 1 8; do xf=$([ $M -gt 1 ] && echo 1 || echo 0)
      timeout 60 /tmp/hb/mmasp_bulk_check $shape 0.25 c 1 $M 1 8 8 30 $xf >> $R 2>&1 || echo "FAILED $shape $M" >> $R
    done
  done
done
echo "harness done at $(el) s" >> $OUT/gpu.txt
timeout 200 python3 .gptfast/gptfast_decode.py 8 > $OUT/anchor_b8.txt 2>&1; echo "anchor b8 rc=$? at $(el) s" >> $OUT/gpu.txt
wait $P1
tail -3 /tmp/build_f.txt > $OUT/build.txt
echo "build done at $(el) s" >> $OUT/gpu.txt
[ -f /tmp/f/spense_mmasp.so ] || { echo "no build" >> $OUT/gpu.txt; tail -40 /tmp/build_f.txt >> $OUT/build.txt; exit 1; }
tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
export PYTHONPATH=src SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
timeout 150 python3 -m pytest -q -m gpu tests/test_mmasp.py -k "clamped or early_prologue" -p no:cacheprovider > $OUT/tests.txt 2>&1
echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
T=$(( 560 - $(el) )); [ $T -gt 200 ] && T=200
SPENSE_MMASP_EARLY=19 timeout $T compute-sanitizer --tool memcheck --print-limit 20 python3 benchmarks/sanitize_kernels.py > $OUT/memcheck.txt 2>&1
echo "memcheck rc=$? at $(el) s" >> $OUT/gpu.txt
mkdir -p $OUT/lb
for v in auto 19; do
  [ $(( 580 - $(el) )) -gt 45 ] || break
  SPENSE_MMASP_EARLY=$v timeout $(( 580 - $(el) )) python3 benchmarks/linear_bench.py --out $OUT/lb/fp8_$v --shapes 8B.qkv,8B.o,8B.down,32B.o,32B.down \
    --ms 1,8 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,mmasp --fp8-compiled-ms "" > $OUT/lb/fp8_$v.txt 2>&1
  echo "lb $v rc=$? at $(el) s" >> $OUT/gpu.txt
done
tar czf $OUT/lb.tgz -C $OUT lb && rm -rf $OUT/lb
echo "end at $(el) s" >> $OUT/gpu.txt
