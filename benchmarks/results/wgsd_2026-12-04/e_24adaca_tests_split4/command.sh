# next stop, call 1 (plan written at the twenty-fifth stop): the extension at HEAD built and exported (ext.tgz;
# csrc changed since fd8c77f: the grid's bound for an explicit grid, spense_wgsp's trace); every stream-K GPU
# test (the new grid / trace test among them); sk_timeline.py on the four 8B shapes, fp8 and bf16, M = 1, 16, 32,
# splits -1, 0, 2, 4; linear_bench FP8 at M = 16, 32 on 8B.o and 8B.qkv with SPLIT=4 against the default.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s)
el() { echo $(( $(date +%s)-S )); }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
rm -rf /tmp/o; mkdir -p /tmp/f /tmp/o
TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1
echo "build rc=$? at $(el) s" >> $OUT/gpu.txt
[ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/build_f.txt > $OUT/build.txt; cat $OUT/gpu.txt; exit 1; }
tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
timeout 120 python3 -m pytest -v -m gpu tests/test_wgsp.py tests/test_wgsp_stream_k.py -p no:cacheprovider > /tmp/o/tests.txt 2>&1
echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
timeout 120 python3 benchmarks/sk_timeline.py --out /tmp/o/tl --splits -1,0,2,4 > /tmp/o/tl.txt 2>&1
echo "timeline rc=$? at $(el) s" >> $OUT/gpu.txt
LB="python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o --ms 16,32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms ''"
timeout 60 bash -c "$LB --out /tmp/o/la" > /tmp/o/la.txt 2>&1; echo "la rc=$? at $(el) s" >> $OUT/gpu.txt
SPENSE_WGSD_SK_SPLIT=4 timeout 60 bash -c "$LB --out /tmp/o/l4" > /tmp/o/l4.txt 2>&1; echo "l4 rc=$? at $(el) s" >> $OUT/gpu.txt
echo "end at $(el) s" >> $OUT/gpu.txt
rm -f /tmp/o/*/*.png
tar czf $OUT/out.tgz -C /tmp/o .
cat $OUT/gpu.txt; grep -E "passed|failed|FAIL" /tmp/o/tests.txt | tail -6 | cut -c1-250; cat /tmp/o/tl.txt | cut -c1-200
for f in la l4; do echo "== $f"; grep -hE "^(8|32)B|rror" /tmp/o/$f.txt | sed -E 's/ +lim=.*//' | cut -c1-250; done
# then (call 2, the extension carried as .carry/extz/ext.tgz): SPENSE_MMASP_SO=... bash benchmarks/run_fp8_sk.sh
# (the FP8 dense table measured again with `sk` on whole shares, and the 8B FP8 pair at B = 32 on it)
