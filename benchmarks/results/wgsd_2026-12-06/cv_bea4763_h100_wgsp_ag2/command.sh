#!/usr/bin/env bash
# fifty-second stop (any GPU; letter cv): the prefill kernel's AG form (the sparse steps' A from global memory,
# loaded right after each step's wgmmas, before the wait for the step before's) in the harness
# (.carry/cmds/wgsp_check.gz: benchmarks/wgsp_check.cu built here, nvcc 13.0, -O3 sm_90a, no cuBLAS) on the four
# issue-9 shapes at M = 2048, 25 % dense columns, next to cuBLAS by torch; the SASS around the AG kernel's
# warpgroup arrives; ncu of wgsp_ws and wgsp_wsg on 8B.gate_up if time is left (LIM caps it).
set -u
T0=$(date +%s); W=$OUT/${LETTER:-cv}; mkdir -p $W; cp .carry/cmds/n41.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
B=/tmp/wgsp_check; gunzip -c .carry/cmds/wgsp_check.gz > $B && chmod +x $B
for r in 1 2; do
  for s in "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
    WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B $s 0.25 c 2048 20 >> $W/harness.txt 2>&1; echo "rc=$? $s round $r at $(el) s" >> $W/harness.txt
  done
done
python - >> $W/cublas.txt 2>&1 <<'PY'
import torch, torch.nn.functional as F
for N, K in ((24576, 4096), (4096, 12288), (51200, 5120), (5120, 25600)):
    x = torch.randn(2048, K, device='cuda', dtype=torch.bfloat16); w = torch.randn(N, K, device='cuda', dtype=torch.bfloat16)
    for _ in range(3): F.linear(x, w)
    s = torch.cuda.Event(True); e = torch.cuda.Event(True); torch.cuda.synchronize(); s.record()
    for _ in range(20): F.linear(x, w)
    e.record(); e.synchronize(); print(N, K, 'cublas F.linear us', s.elapsed_time(e) * 1e3 / 20, flush=True)
PY
echo "cublas at $(el) s" >> $W/times.txt
CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
if [ -n "$CUOBJ" ]; then
  $CUOBJ -sass -fun '_Z21spense_wgsp_ws_kernelILi4ELi2ELi1ELi128ELi1ELb0ELb1EEv6WgMapsiPKiS2_S2_P13__nv_bfloat16iiiiiii' $B > $W/sass_ag.txt 2>&1
  $CUOBJ -sass -fun '_Z21spense_wgsp_ws_kernelILi4ELi2ELi1ELi128ELi1ELb0ELb0EEv6WgMapsiPKiS2_S2_P13__nv_bfloat16iiiiiii' $B > $W/sass_plain.txt 2>&1
  gzip $W/sass_ag.txt $W/sass_plain.txt
fi
echo "sass at $(el) s" >> $W/times.txt
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
t=$(( ${LIM:-300} - $(el) - 10 ))
if [ -n "$NCU" ] && [ $t -gt 40 ]; then
  WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout $t $NCU --clock-control none --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis -k "regex:spense_wgsp_ws_kernel" -c 3 $B 24576 4096 0.25 c 2048 1 > $W/ncu.txt 2>&1
  echo "ncu rc=$? at $(el) s" >> $W/times.txt
fi
cat $W/times.txt; grep -E '^N=|^ag|rc=' $W/harness.txt | cut -c1-250; cat $W/cublas.txt
grep -E 'spense_wgsp_ws_kernel<|Duration|Compute \(SM\) Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Stall Long|Stall Short|Warp Cycles Per Issued' $W/ncu.txt 2>/dev/null | cut -c1-150 | head -40
