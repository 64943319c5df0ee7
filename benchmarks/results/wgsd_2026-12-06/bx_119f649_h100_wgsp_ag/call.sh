# as run: two calls on one H100 (the first started it, the second on it warm). .carry/bin/wgsp_check.gz was
# benchmarks/wgsp_check.cu built here (nvcc 13.0, -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v
# -I src/spense/runtime/csrc, no cuBLAS) on 119f649 with ag.patch applied, then gzipped (the tree's size limit)
# --- call 1
nvidia-smi --query-gpu=name --format=csv,noheader; B=/tmp/wgsp_check; gunzip -c .carry/bin/wgsp_check.gz > $B && chmod +x $B; for s in "24576 4096" "4096 12288"; do WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 50 $B $s 0.25 c 2048 20; echo "rc=$?"; done; python -c "
import torch,torch.nn.functional as F
for N,K in ((24576,4096),(4096,12288)):
  x=torch.randn(2048,K,device='cuda',dtype=torch.bfloat16); w=torch.randn(N,K,device='cuda',dtype=torch.bfloat16)
  for _ in range(3): F.linear(x,w)
  s=torch.cuda.Event(True); e=torch.cuda.Event(True); torch.cuda.synchronize(); s.record()
  for _ in range(20): F.linear(x,w)
  e.record(); e.synchronize(); print(N,K,'cublas F.linear us',s.elapsed_time(e)*1e3/20)
"
# --- call 2
B=/tmp/wgsp_check; NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1); WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 100 $NCU --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats -k "regex:spense_wgsp_ws_kernel" -c 4 $B 24576 4096 0.25 c 2048 1 2>&1 | grep -E "spense_wgsp_ws_kernel<|Duration|Compute \(SM\) Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|DRAM Throughput|Stall|stall|Warp Cycles Per Issued|Mem Busy|Max Bandwidth|Mem Pipes|shared|Shared|scoreboard|Est. Speedup" | cut -c1-160 | head -70
