# call 2, on a's extension (carry: .carry/cmds .carry/extz)
# Run as:
SPENSE_COMMIT=78cd7d2 bash .carry/cmds/c2.sh
# .carry/cmds/c2.sh:
#   # twenty-fifth stop, call 2 (extension of call 1 carried, csrc unchanged since fd8c77f): linear_bench with the
#   # stream-K grid on whole shares (SPENSE_WGSD_SK_SPLIT default) against one CTA per SM (0): FP8 at M = 1, 8, 16,
#   # 32 on the 8B and 32B gate_up / down shapes; bf16 stream-K shapes at M = 16, 32. Then 8B at B = 32: the FP8
#   # pair with Spense FP8 again under SPLIT=0; the BF16 pair likewise. Outputs in one tar.
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   rm -rf /tmp/o; mkdir -p .carry/ext /tmp/o && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   LB="python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down,32B.gate_up,32B.down --ms 1,8,16,32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-extra --fp8-only 64x256x2x8,64x128x1x4 --fp8-compiled-ms ''"
#   timeout 90 bash -c "$LB --out /tmp/o/fa" > /tmp/o/fa.txt 2>&1; echo "fa rc=$? at $(el) s" >> $OUT/gpu.txt
#   SPENSE_WGSD_SK_SPLIT=0 timeout 90 bash -c "$LB --out /tmp/o/f0" > /tmp/o/f0.txt 2>&1; echo "f0 rc=$? at $(el) s" >> $OUT/gpu.txt
#   LBB="python3 benchmarks/linear_bench.py --shapes 8B.down,32B.gate_up,32B.down --ms 16,32 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,wgsd"
#   timeout 60 bash -c "$LBB --out /tmp/o/ba" > /tmp/o/ba.txt 2>&1; echo "ba rc=$? at $(el) s" >> $OUT/gpu.txt
#   SPENSE_WGSD_SK_SPLIT=0 timeout 60 bash -c "$LBB --out /tmp/o/b0" > /tmp/o/b0.txt 2>&1; echo "b0 rc=$? at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2e8 LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 330 - $(el) )) \
#     ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8" AB_SPFP8_ENV="SPENSE_WGSD_SK_SPLIT=0" bash benchmarks/run_e2e.sh
#   echo "e2e8 at $(el) s" >> $OUT/gpu.txt
#   OUT=/tmp/o/e2eb LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 575 - $(el) )) \
#     ONLY="dense_bf16 spense_bf16 ab1" AB1_ENV="SPENSE_WGSD_SK_SPLIT=0" bash benchmarks/run_e2e.sh
#   echo "end at $(el) s" >> $OUT/gpu.txt
#   rm -f /tmp/o/*/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt
#   for f in fa f0 ba b0; do echo "== $f"; grep -hE "^(8|32)B|rror" /tmp/o/$f.txt | cut -c1-150; done
#   grep -hv skipped /tmp/o/e2e8/stages.txt /tmp/o/e2eb/stages.txt; grep -hE "^qwen3" /tmp/o/e2e8/log.txt /tmp/o/e2eb/log.txt | cut -c1-250 | head -20
