# call 1 (twenty-third stop), a fresh machine: the extension built at 966a752 (the csrc of 1152e6c; SPENSE_COMMIT was
# mistyped as 3c9a5a6, no such commit); ext.tgz carried to the later calls as .carry/extz/ext.tgz, not kept here. Run as:
SPENSE_COMMIT=3c9a5a6 bash .carry/cmds/c1.sh
# .carry/cmds/c1.sh:
#   # twenty-third stop, call 1: the extension at HEAD built and exported (ext.tgz); the GPU same-bits test of the register
#   # kernel (now at 2, 4 and 8 warps); linear_bench FP8 on the gate_up shapes at M = 1, 8 with launch configs 1x2, 1x4, 1x8
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
#   timeout 100 python3 -m pytest -v -m gpu tests/test_mmasp.py -k "same_bits_every_call" -p no:cacheprovider > $OUT/tests.txt 2>&1
#   echo "tests rc=$? at $(el) s" >> $OUT/gpu.txt
#   L=$(( 575 - $(el) ))
#   timeout $L python3 benchmarks/linear_bench.py --out $OUT/lb --shapes 8B.gate_up,32B.gate_up --ms 1,8 --ratios 0.25 \
#     --axes cols --dtypes fp8 --backends dense,mmasp --cfgs 1x2,1x4,1x8 --fp8-compiled-ms "" > $OUT/lb.txt 2>&1
#   echo "lb rc=$? at $(el) s" >> $OUT/gpu.txt
#   cat $OUT/gpu.txt; tail -4 $OUT/tests.txt; grep -E "^8B|^32B|check" $OUT/lb.txt | cut -c1-400
