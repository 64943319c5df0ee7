#!/usr/bin/env bash
# fifty-fourth stop (any GPU; letter from $LETTER): the prefill kernel in clusters of 2 or 4 CTAs on neighbouring
# row blocks sharing x by TMA multicast (XR; cuSPARSELt's searched sm90 kernel multicasts x to clusters of 4, de) in
# the harness (.carry/cmds/wgsp_checkx.gz: benchmarks/wgsp_check.cu built here at this tree, nvcc 13.0, -O3, no
# cuBLAS), M = 2048, the four issue-9 shapes at 25 % dense columns (twice) and 8B.gate_up at 0 %; then n53.sh
# (sustained clocks) while LIM allows
set -u
T0=$(date +%s); W=$OUT/${LETTER:-dj}; mkdir -p $W; cp .carry/cmds/n54.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
B=/tmp/wgsp_checkx; gunzip -c .carry/cmds/wgsp_checkx.gz > $B && chmod +x $B
for r in 1 2; do
  for s in "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
    WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B $s 0.25 c 2048 20 >> $W/harness.txt 2>&1
    echo "rc=$? $s round $r at $(el) s" >> $W/times.txt
  done
done
WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B 24576 4096 0 c 2048 20 >> $W/harness.txt 2>&1
echo "rc=$? 24576 4096 d=0 at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "rel_diff|^xr|mismatch|other bits" $W/harness.txt | sed -E 's/\| wgsp_wsc.*//' | cut -c1-240
[ $(( ${LIM:-300} - $(el) )) -gt 60 ] && LETTER=${LETTER2:-dk} bash .carry/cmds/n53.sh
