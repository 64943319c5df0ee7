#!/usr/bin/env bash
# forty-ninth stop (any GPU; letter cd): the prefill kernel's sparse steps reading their A one step ahead on a third
# register set (spense_wgsp_ws_kernel's AP, SPENSE_WGSP_APRE=1). The harness built here (.carry/bin/wgsp_ap.gz, no
# cuBLAS): correctness with AP on, memcheck of one AP run, then M = 2048 timed with AP off / on alternately on the
# 8B and 32B gate_up / down shapes (twice on 8B); the torch extension built beside it: the GPU tests of
# tests/test_wgsp.py with AP on, then prefill_bench (bf16, M = 2048 / 8192) with AP off and on. LIM caps the run.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cd}; mkdir -p $W; cp .carry/cmds/n27.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
gunzip -c .carry/bin/wgsp_ap.gz > /tmp/wgsp_ap && chmod +x /tmp/wgsp_ap
H="env WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 /tmp/wgsp_ap"
for a in "256 1024 0.25 c 64 1" "256 1024 0.25 c 200 1" "256 1024 0.25 r 200 1" "512 2048 0.5 c 130 1" \
         "256 960 0.25 c 300 1" "256 64 0.25 c 200 1" "512 192 0.25 r 130 1" "1024 4096 0.25 r 1000 1"; do
  SPENSE_WGSP_APRE=1 $H $a >> $W/check.txt 2>&1 || echo "MISMATCH or failure (rc=$?) at $a" >> $W/check.txt
done
echo "check done at $(el) s" >> $W/times.txt
SPENSE_WGSP_APRE=1 WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 \
  /tmp/wgsp_ap 256 1024 0.25 c 200 1 > $W/memcheck.txt 2>&1; echo "memcheck rc=$? at $(el) s" >> $W/times.txt
for s in "24576 4096" "4096 12288" "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
  for ap in 0 1; do SPENSE_WGSP_APRE=$ap $H $s 0.25 c 2048 20 2>&1 | sed "s/^/ap=$ap /" >> $W/ab.txt; done
done
echo "ab done at $(el) s" >> $W/times.txt
python3 -c "
import torch, torch.nn.functional as F
for N, K in [(24576, 4096), (4096, 12288), (51200, 5120), (5120, 25600)]:
    w = torch.randn(N, K, device='cuda', dtype=torch.bfloat16); x = torch.randn(2048, K, device='cuda', dtype=torch.bfloat16)
    for _ in range(3): F.linear(x, w)
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True); e0.record()
    for _ in range(20): F.linear(x, w)
    e1.record(); torch.cuda.synchronize(); print(N, K, 'cublas F.linear us', e0.elapsed_time(e1) / 20 * 1e3)
" >> $W/ab.txt 2>&1
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 300 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
SPENSE_WGSP_APRE=1 timeout 120 python3 -m pytest -q -m gpu tests/test_wgsp.py -p no:cacheprovider > $W/pytest_ap.txt 2>&1
echo "pytest rc=$? at $(el) s" >> $W/times.txt
for ap in 0 1; do
  t=$(( ${LIM:-420} - $(el) )); [ $t -gt 90 ] && t=90; [ $t -lt 30 ] && break
  SPENSE_WGSP_APRE=$ap timeout $t python3 benchmarks/prefill_bench.py --out $W/prefill_ap$ap --dtypes bf16 --ms 2048,8192 \
    --shapes 8B.gate_up,8B.down,32B.gate_up,32B.down > $W/prefill_ap$ap.txt 2>&1; echo "prefill ap=$ap rc=$? at $(el) s" >> $W/times.txt
done
cat $W/times.txt; grep -c MISMATCH $W/check.txt; grep -E "ERROR SUMMARY" $W/memcheck.txt; tail -2 $W/pytest_ap.txt
grep -E "^ap=. N=" $W/ab.txt | sed 's/| wgsp [0-9.]* us [0-9]* TFLOP\/s //; s/| wgsp_wsc.*//' | cut -c1-200; grep cublas $W/ab.txt
grep -h "M=" $W/prefill_ap*.txt | sed 's/, unpack.*wgsp / wgsp /; s/, wgsp_cl2.*//' | cut -c1-160
