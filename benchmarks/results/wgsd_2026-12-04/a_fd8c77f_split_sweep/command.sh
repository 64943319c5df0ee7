# call 1 (twenty-fifth stop), a fresh machine: the extension built at fd8c77f (spense_wgsp takes the stream-K grid); ext.tgz carried to b-d as .carry/extz/ext.tgz, not kept here (csrc unchanged from fd8c77f to 7ebf4a5). The stream-K grid was 0 by default at fd8c77f.
# Run as:
SPENSE_COMMIT=fd8c77f bash .carry/cmds/c1.sh
# .carry/cmds/c1.sh:
#   # twenty-fifth stop, call 1: the extension at HEAD built and exported (ext.tgz; spense_wgsp takes the stream-K
#   # grid); the stream-K GPU tests; linear_bench on the 8B shapes with SPENSE_WGSD_SK_SPLIT = 0 (one CTA per SM),
#   # 1, 2, 3 (CTAs per row block of 128 rows): FP8 at M = 16, 32; bf16 at M = 32 stream-K (SK=1) against the
#   # default (clusters on the short rows). Outputs in one tar.
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   mkdir -p /tmp/f /tmp/o
#   TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1
#   echo "build rc=$? at $(el) s" >> $OUT/gpu.txt
#   [ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/build_f.txt > $OUT/build.txt; cat $OUT/gpu.txt; exit 1; }
#   tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
#   export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
#   timeout 100 python3 -m pytest -v -m gpu tests/test_wgsp.py -k "fp8_stream_k or f16_x or dense_fp8_through or variants or refuses" -p no:cacheprovider > /tmp/o/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   LB="python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 16,32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms ''"
#   for s in 0 1 2 3; do
#     SPENSE_WGSD_SK_SPLIT=$s timeout 80 bash -c "$LB --out /tmp/o/f$s" > /tmp/o/f$s.txt 2>&1; echo "f$s rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   LBB="python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up --ms 32 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,wgsd"
#   timeout 60 bash -c "$LBB --out /tmp/o/bd" > /tmp/o/bd.txt 2>&1; echo "bd rc=$? at $(el) s" >> $OUT/gpu.txt
#   for s in 0 1 2; do
#     SPENSE_WGSD_SK=1 SPENSE_WGSD_SK_SPLIT=$s timeout 60 bash -c "$LBB --out /tmp/o/b$s" > /tmp/o/b$s.txt 2>&1; echo "b$s rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   rm -f /tmp/o/*/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt; tail -12 /tmp/o/tests.txt | cut -c1-250
#   for f in f0 f1 f2 f3 bd b0 b1 b2; do echo "== $f"; grep -hE "^8B|rror" /tmp/o/$f.txt | cut -c1-300; done
