# call 2: the carried extension; sk_timeline (all grids); 8B.o at M = 9-64 with the new default grid (fp8: register
# kernel beside; bf16: stream-K forced against the clusters); then run_fp8_sk.sh (FP8 dense table again + 8B B=32 pair).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
rm -rf /tmp/o /tmp/e; mkdir -p /tmp/o /tmp/e
tar xzf .carry/extz/ext.tgz -C /tmp/e && export SPENSE_MMASP_SO=/tmp/e/spense_mmasp.so
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
timeout 100 python3 benchmarks/sk_timeline.py --out /tmp/o/tl > /tmp/o/tl.txt 2>&1; echo "timeline rc=$? at $(el) s" >> /tmp/o/gpu.txt
timeout 45 python3 benchmarks/linear_bench.py --out /tmp/o/lo --shapes 8B.o,8B.qkv --ms 9,12,16,32,64 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,mmasp,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms '' > /tmp/o/lo.txt 2>&1; echo "lo rc=$? at $(el) s" >> /tmp/o/gpu.txt
for sk in 2 1; do SPENSE_WGSD_SK=$sk timeout 30 python3 benchmarks/linear_bench.py --out /tmp/o/lb$sk --shapes 8B.o,8B.qkv --ms 32,64 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,wgsd > /tmp/o/lb$sk.txt 2>&1; echo "lb$sk rc=$? at $(el) s" >> /tmp/o/gpu.txt; done
L=$(( 585 - $(el) ))
OUT=/tmp/o BUDGET=$L TESTS=0 S5=0 PROBE=0 bash benchmarks/run_fp8_sk.sh > /tmp/o/fp8sk_run.txt 2>&1; echo "fp8sk rc=$? at $(el) s" >> /tmp/o/gpu.txt
rm -f /tmp/o/*/*.png /tmp/o/fp8sk.tgz
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; cut -c1-160 /tmp/o/tl.txt | head -70
for f in lo lb2 lb1; do echo "== $f"; grep -hE "^(8|32)B|rror" /tmp/o/$f.txt | sed -E 's/ +lim=.*//' | cut -c1-250; done
cat /tmp/o/fp8sk_run.txt | tail -15
