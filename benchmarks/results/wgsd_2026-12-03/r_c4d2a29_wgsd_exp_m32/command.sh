# call 6 (twenty-third stop), a fresh machine, call 1's extension. Run as:
BUDGET=240 SPENSE_COMMIT=c4d2a29 bash .carry/cmds/c6.sh
# .carry/cmds/c6.sh:
#   # twenty-third stop, call 6: the e4m3 stream-K form at M = 32 under its variant bits (SPENSE_WGSD_EXP 1: the default
#   # there, 33: two wgmma groups in flight, 65: four accumulator chains, 97: both, 17: tiles of 64 tokens), linear_bench on
#   # the four 8B shapes with the FP8 dense baseline's two configs that won there in call 4. Outputs in one tar.
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > $OUT/gpu.txt
#   mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
#   export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
#   mkdir -p /tmp/o
#   for v in 1 33 65 97 17; do
#     L=$(( ${BUDGET:-270} - $(el) )); [ $L -gt 25 ] || break
#     SPENSE_WGSD_EXP=$v timeout $L python3 benchmarks/linear_bench.py --out /tmp/o/lb_$v --shapes 8B.qkv,8B.o,8B.gate_up,8B.down \
#       --ms 32 --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-only 64x256x2x8,64x128x1x4 \
#       --fp8-compiled-ms "" > /tmp/o/lb_$v.txt 2>&1
#     echo "exp $v rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   rm -f /tmp/o/lb_*/*.png
#   tar czf $OUT/out.tgz -C /tmp/o .
#   cat $OUT/gpu.txt; for v in 1 33 65 97 17; do echo "== $v"; grep -E "^8B|failed|FAILED" /tmp/o/lb_$v.txt | cut -c1-120; done
