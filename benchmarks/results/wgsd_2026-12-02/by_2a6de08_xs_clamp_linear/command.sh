# call 1 (nineteenth stop): the extension at 2a6de08 built and exported; GPU tests of SPENSE_MMASP_XS_CLAMP; linear_bench bf16
# M = 16, 8 on gate_up/down: default, SPENSE_MMASP_XS_CLAMP=1, SPENSE_MMASP_XS=0. Run as:
SPENSE_COMMIT=2a6de08 bash .carry/cmds/w1.sh
# .carry/cmds/w1.sh:
#   # next stop, call 1: the extension at HEAD (exported as ext.tgz), the GPU tests of SPENSE_MMASP_XS_CLAMP (bits, launch),
#   # then linear_bench bf16 at M = 8, 16 on the gate_up and down shapes: default, SPENSE_MMASP_XS_CLAMP=1, SPENSE_MMASP_XS=0
#   set -u
#   export PYTHONUNBUFFERED=1 PYTHONPATH=src
#   S=$(date +%s)
#   el() { echo $(( $(date +%s)-S )); }
#   nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
#   echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
#   mkdir -p /tmp/f
#   TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 400 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1
#   echo "build rc=$? at $(el) s" >> $OUT/gpu.txt
#   [ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/build_f.txt > $OUT/build.txt; exit 1; }
#   tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
#   export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
#   timeout 150 python3 -m pytest -v -m gpu tests/test_mmasp.py -k "xs_clamped or launches_the_clamped" -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   mkdir -p $OUT/lb
#   for v in default xsclamp xs0; do
#     L=$(( 580 - $(el) )); [ $L -gt 40 ] || break
#     case $v in default) E="";; xsclamp) E="SPENSE_MMASP_XS_CLAMP=1";; xs0) E="SPENSE_MMASP_XS=0";; esac
#     env $E timeout $L python3 benchmarks/linear_bench.py --out $OUT/lb/bf16_$v --shapes 8B.gate_up,32B.gate_up,8B.down,32B.down \
#       --ms 16,8 --ratios 0.25 --axes cols --dtypes bf16 --backends dense,mmasp > $OUT/lb/bf16_$v.txt 2>&1
#     echo "lb $v rc=$? at $(el) s" >> $OUT/gpu.txt
#   done
#   tar czf $OUT/lb.tgz -C $OUT lb && rm -rf $OUT/lb
#   cat $OUT/gpu.txt
