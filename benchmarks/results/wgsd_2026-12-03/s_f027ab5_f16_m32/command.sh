# call 1 (twenty-fourth stop), a fresh machine: the extension built at f027ab5 (kernels 2561 / 2625 on tiles of 32); ext.tgz
# not kept (call t rebuilt at cb12104, where 2561 is gone). Run as:
SPENSE_COMMIT=f027ab5 bash .carry/cmds/c1.sh
# .carry/cmds/c1.sh:
#   # twenty-fourth stop, call 1: the extension at HEAD built and exported (ext.tgz); the stream-K GPU tests (x in f16 on
#   # tiles of 32 tokens: kernels 2561 / 2625 at 32); linear_bench FP8 at M = 32 on the four 8B shapes with
#   # SPENSE_WGSD_F16_MAX_M = 16 (today) and 32 (EXP 2049 -> kernel 2561, 2625 -> four chains); then the 8B FP8 pair at
#   # B = 32 and Spense FP8 again with SPENSE_WGSD_F16_MAX_M=32. Outputs in one tar.
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
#   timeout 120 python3 -m pytest -v -m gpu tests/test_wgsp.py -k "fp8_stream_k or f16_x or dense_fp8_through or variants" -p no:cacheprovider > /tmp/o/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   LB="python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms ''"
#   timeout 70 bash -c "$LB --out /tmp/o/lb16" > /tmp/o/lb16.txt 2>&1; echo "lb16 rc=$? at $(el) s" >> $OUT/gpu.txt
#   SPENSE_WGSD_F16_MAX_M=32 timeout 70 bash -c "$LB --out /tmp/o/lb32" > /tmp/o/lb32.txt 2>&1; echo "lb32 rc=$? at $(el) s" >> $OUT/gpu.txt
#   SPENSE_WGSD_F16_MAX_M=32 SPENSE_WGSD_EXP=2625 timeout 70 bash -c "$LB --out /tmp/o/lb32c" > /tmp/o/lb32c.txt 2>&1; echo "lb32c rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 580 - $(el) )) \
#     ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8" AB_SPFP8_ENV="SPENSE_WGSD_F16_MAX_M=32" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   rm -f /tmp/o/lb*/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt; tail -12 /tmp/o/tests.txt | cut -c1-250; grep -hE "^8B|rror" /tmp/o/lb16.txt /tmp/o/lb32.txt /tmp/o/lb32c.txt | cut -c1-330; grep -v skipped /tmp/o/e2e/stages.txt
#   grep -hE "^qwen3" /tmp/o/e2e/log.txt | head
