# one call: both extension builds (HEAD and 0a2a77f, in the background), the harness A/B of both commits (GPU, meanwhile),
# then linear_bench bf16 of both commits, alternating, on the four 8B shapes at M = 1, 8
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s); ROOT=$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
mkdir -p /tmp/h /tmp/o
( PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/ext_h timeout 420 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/h/spense_mmasp.so')" > /tmp/build_h.txt 2>&1; echo "build_h rc=$? $(( $(date +%s)-S )) s" >> /tmp/build_h.txt ) &
P1=$!
( cd .carry/old && PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/ext_o timeout 420 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/o/spense_mmasp.so')" > /tmp/build_o.txt 2>&1; echo "build_o rc=$? $(( $(date +%s)-S )) s" >> /tmp/build_o.txt ) &
P2=$!
tar xzf .carry/hb/hb.tgz -C /tmp
R=$OUT/harness.txt
echo "# harness A/B: o = 0a2a77f, h = ${SPENSE_COMMIT:-HEAD}; $(date -u +%FT%TZ); args N K 0.25 c 0 M 1 W 8 50 xf" > $R
for shape in "6144 4096" "4096 4096" "24576 4096" "4096 12288"; do for M in 1 8; do xf=$([ $M -gt 1 ] && echo 1 || echo 0)
  for w in 4 8; do for b in o h o h; do echo -n "$b " >> $R; timeout 60 /tmp/hb/check_$b $shape 0.25 c 0 $M 1 $w 8 50 $xf >> $R 2>&1 || echo "FAILED $b $shape $M $w" >> $R; done; done
done; done
echo "harness done at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
wait $P1; wait $P2
cat /tmp/build_h.txt /tmp/build_o.txt | grep -v "^\s*$" | tail -40 > $OUT/builds.txt
echo "builds done at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
[ -f /tmp/h/spense_mmasp.so ] && tar czf $OUT/ext.tgz -C /tmp/h spense_mmasp.so spense_mmasp.so.src
LB="benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 1,8 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp --cfgs 1x4,1x8"
L=$OUT/lb.txt; : > $L
for rep in 1 2; do
  echo "##### h rep $rep $(date -u +%T)" >> $L
  PYTHONPATH=src SPENSE_MMASP_SO=/tmp/h/spense_mmasp.so timeout 150 python $LB --out /tmp/lb_h$rep >> $L 2>&1 || echo "lb h rc=$?" >> $L
  echo "##### o rep $rep $(date -u +%T)" >> $L
  ( cd .carry/old && PYTHONPATH=src SPENSE_MMASP_SO=/tmp/o/spense_mmasp.so timeout 150 python $LB --out /tmp/lb_o$rep >> $L 2>&1 || echo "lb o rc=$?" >> $L )
  echo "lb rep $rep done at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
done
tar czf $OUT/lb_json.tgz -C /tmp lb_h1 lb_o1 lb_h2 lb_o2 2>/dev/null
echo "end at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
