# call 3, on a's extension
# Run as:
SPENSE_COMMIT=daf4f09 bash .carry/cmds/c3.sh
# .carry/cmds/c3.sh:
#   # twenty-fifth stop, call 3 (extension of call 1 carried): the register kernel (mmasp_xh) against the stream-K
#   # form on whole shares (wgsd_xh) in e4m3 at M = 8, 16 on the 8B and 32B shapes; 32B.qkv / 32B.o at M = 32 on whole
#   # shares against one CTA per SM; bf16 stream-K (SK=1) on whole shares against clusters at M = 32 on 8B.gate_up;
#   # then 8B FP8 at B = 8: the pair, and Spense FP8 again with SPENSE_WGSD_MIN_M=1 (stream-K at every M).
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   rm -rf /tmp/o; mkdir -p .carry/ext /tmp/o && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   LB="python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.gate_up,32B.down --ms 8,16 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,mmasp,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms ''"
#   timeout 150 bash -c "$LB --out /tmp/o/rm" > /tmp/o/rm.txt 2>&1; echo "rm rc=$? at $(el) s" >> $OUT/gpu.txt
#   LQ="python3 benchmarks/linear_bench.py --shapes 32B.qkv,32B.o --ms 32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms ''"
#   timeout 60 bash -c "$LQ --out /tmp/o/qa" > /tmp/o/qa.txt 2>&1; echo "qa rc=$? at $(el) s" >> $OUT/gpu.txt
#   SPENSE_WGSD_SK_SPLIT=0 timeout 60 bash -c "$LQ --out /tmp/o/q0" > /tmp/o/q0.txt 2>&1; echo "q0 rc=$? at $(el) s" >> $OUT/gpu.txt
#   SPENSE_WGSD_SK=1 timeout 60 python3 benchmarks/linear_bench.py --shapes 8B.gate_up,8B.qkv --ms 32 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,wgsd --out /tmp/o/gb > /tmp/o/gb.txt 2>&1; echo "gb rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2e8 LAYERS=36 BATCHES=8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 560 - $(el) )) \
#     ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8" AB_SPFP8_ENV="SPENSE_WGSD_MIN_M=1" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   rm -f /tmp/o/*/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt
#   for f in rm qa q0 gb; do echo "== $f"; grep -hE "^(8|32)B|rror" /tmp/o/$f.txt | sed -E 's/ +lim=.*//' | cut -c1-330; done
#   grep -hv skipped /tmp/o/e2e8/stages.txt; grep -hE "^qwen3" /tmp/o/e2e8/log.txt | cut -c1-250 | head -20
