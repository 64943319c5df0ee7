# call 1 (twentieth stop): the extension at 1152e6c built and exported; the GPU tests of SPENSE_MMASP_XS_CLAMP (bits,
# launch; the launch test ran out of its 120 s, and passed in call 4 with 240 s); linear_bench bf16 at M = 16 on the gate_up
# shapes with the switch unset (the default), =0 and =1. Run as:
SPENSE_COMMIT=1152e6c bash .carry/cmds/w8.sh
# .carry/cmds/w8.sh:
#   # twentieth stop, call 1: the extension at HEAD built and exported (ext.tgz); the GPU launch test of SPENSE_MMASP_XS_CLAMP's
#   # default (spense_mmasp.cu: xs_clamp, both sides of the rule); linear_bench bf16 at M = 16 on the gate_up shapes with the
#   # switch unset (the default), =0 and =1
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   mkdir -p /tmp/f
#   TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1
#   echo "build rc=$? at $(el) s" >> $OUT/gpu.txt
#   [ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/build_f.txt > $OUT/build.txt; cat $OUT/gpu.txt; exit 1; }
#   tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
#   export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
#   timeout 120 python3 -m pytest -v -m gpu tests/test_mmasp.py -k "launches_the_clamped or xs_clamped" -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   mkdir -p $OUT/lb
#   for v in default xs_clamp0 xs_clamp1; do
#     L=$(( 570 - $(el) )); [ $L -gt 40 ] || break
#     case $v in default) E="";; xs_clamp0) E="SPENSE_MMASP_XS_CLAMP=0";; xs_clamp1) E="SPENSE_MMASP_XS_CLAMP=1";; esac
#     env $E timeout $L python3 benchmarks/linear_bench.py --out $OUT/lb/bf16_$v --shapes 8B.gate_up,32B.gate_up \
#       --ms 16 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp > $OUT/lb/bf16_$v.txt 2>&1
#     echo "lb $v rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   tar czf $OUT/lb.tgz -C $OUT lb && rm -rf $OUT/lb
#   cat $OUT/gpu.txt; tail -5 $OUT/tests.txt
