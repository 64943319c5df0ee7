#!/usr/bin/env bash
# forty-ninth stop, for a later one (any GPU; letter cg; call 1 of 2): SPENSE_WGSD_EXP bit 65536 (each ring slot's
# MMAs waited for before the next slot's A: the FP8 stream-K kernels on tiles of 32 tokens, M = 17-32, without the
# wgmma serialization ptxas puts in today's, C7512). The extension with it, its GPU test (same bits as without) and
# the refusal test, memcheck of the e4m3 stream-K form under 104449 and 38913, then linear_bench FP8 at M = 24 / 32
# on the four 8B shapes by default and with the bit (dense rows `sk` take it too). n31.sh follows on the same
# machine: the 8B FP8 pair at B = 32 with and without it. LIM caps the run (default 560 s).
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cg}; mkdir -p $W; cp .carry/cmds/n30.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 150 python3 -m pytest -v -m gpu tests/test_wgsp_stream_k.py -k "drained or refuses or fp8_stream_k or f16_x" \
  -p no:cacheprovider > $W/pytest.txt 2>&1; echo "pytest rc=$? at $(el) s" >> $W/times.txt
SAN_PARTS=wgsp SAN_VARIANTS="38913 104449 79873" timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
  python3 benchmarks/sanitize_kernels.py > $W/memcheck.txt 2>&1; echo "memcheck rc=$? at $(el) s" >> $W/times.txt
for v in 38913 104449 38913 104449; do
  t=$(( ${LIM:-560} - $(el) )); [ $t -gt 80 ] && t=80; [ $t -lt 35 ] && break
  SPENSE_WGSD_EXP=$v timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.gate_up,8B.down --ms 24,32 \
    --ratios 0.25 --axes cols --dtypes fp8 --backends dense,wgsd --fp8-compiled-ms "" --out /tmp/lb_$v > /tmp/lb_$v.txt 2>&1
  echo "lb exp=$v rc=$? at $(el) s" >> $W/times.txt; grep -E "^8B" /tmp/lb_$v.txt | sed "s/^/exp=$v /" >> $W/lb.txt
done
cat $W/times.txt; grep -E "PASSED|FAILED|ERROR" $W/pytest.txt | cut -c1-120; grep -E "ERROR SUMMARY|DONE" $W/memcheck.txt
sed 's/  lim=.*//; s/mmasp[^ ]*= *[0-9.]*us([0-9.]*x) *//g' $W/lb.txt | cut -c1-200
