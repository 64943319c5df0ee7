#!/usr/bin/env bash
# for a later stop (any GPU; letter from $LETTER): the prefill kernel on CTAs of 8 row tiles and 256 tokens (m64n256
# wgmmas; benchmarks/prefill_smem_model.py puts its shared-memory bytes per MMA below the 128-token form's: a sparse
# step 912 cycles for 512 of MMA against 928, a dense step 1,024 for 1,024 against 1,152) in the harness
# (.carry/cmds/wgsp_check256.gz: benchmarks/wgsp_check.cu built here at the commit that added it, nvcc 13.0, -O3
# sm_90a, no cuBLAS): the four issue-9 shapes at M = 2048, 25 % dense columns, two rounds, and M = 300 / 4096 on
# 8B.gate_up (a partial token tile); cuBLAS by torch; memcheck of one run at M = 300.
set -u
T0=$(date +%s); W=$OUT/${LETTER:-db}; mkdir -p $W; cp .carry/cmds/n47.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
B=/tmp/wgsp_check; gunzip -c .carry/cmds/wgsp_check256.gz > $B && chmod +x $B
for r in 1 2; do
  for s in "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
    WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B $s 0.25 c 2048 20 >> $W/harness.txt 2>&1
    echo "rc=$? $s round $r at $(el) s" >> $W/harness.txt
  done
done
for m in 300 4096; do WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B 24576 4096 0.25 c $m 10 >> $W/harness.txt 2>&1; echo "rc=$? M=$m at $(el) s" >> $W/harness.txt; done
WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B 4096 4096 0.25 r 300 10 >> $W/harness.txt 2>&1; echo "rc=$? rows at $(el) s" >> $W/harness.txt
python - >> $W/cublas.txt 2>&1 <<'PY'
import torch, torch.nn.functional as F
for N, K in ((24576, 4096), (4096, 12288), (51200, 5120), (5120, 25600)):
    x = torch.randn(2048, K, device='cuda', dtype=torch.bfloat16); w = torch.randn(N, K, device='cuda', dtype=torch.bfloat16)
    for _ in range(3): F.linear(x, w)
    s = torch.cuda.Event(True); e = torch.cuda.Event(True); torch.cuda.synchronize(); s.record()
    for _ in range(20): F.linear(x, w)
    e.record(); e.synchronize(); print(N, K, 'cublas F.linear us', s.elapsed_time(e) * 1e3 / 20, flush=True)
PY
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
[ -n "$CS" ] && WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 200 $CS --tool memcheck $B 24576 4096 0.25 c 300 1 > $W/memcheck.txt 2>&1; echo "memcheck rc=$? at $(el) s" >> $W/harness.txt
grep -E '^N=|^nt256|rc=' $W/harness.txt | cut -c1-230; cat $W/cublas.txt; tail -3 $W/memcheck.txt
