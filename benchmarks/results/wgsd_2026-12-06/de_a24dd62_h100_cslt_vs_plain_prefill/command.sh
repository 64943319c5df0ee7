#!/usr/bin/env bash
# fifty-fourth stop (any GPU; letter from $LETTER): why cuSPARSELt's whole-2:4 GEMM ran 1.40-1.51x over cuBLAS at
# M = 2048 (H200 probe, 2026-12-01) where the shared-memory model of benchmarks/prefill_smem_model.py caps a 2:4
# wgmma.sp GEMM that stages x in shared memory near 1.24x: (1) cuSPARSELt (default and searched algorithm) against
# cuBLAS with its kernels' names, and the harness's plain form at 0 and 25 % dense columns, on 8B.gate_up and 8B.down;
# (2) ncu --set full of cuBLAS, cuSPARSELt and the plain form at 0 and 25 % on 8B.gate_up. LIM caps it.
set -u
T0=$(date +%s); W=$OUT/${LETTER:-de}; mkdir -p $W; cp .carry/cmds/n52.sh .carry/cmds/cslt_probe.py $W/
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
B=/tmp/wgsp_check; gunzip -c .carry/cmds/wgsp_check256.gz > $B && chmod +x $B
P=.carry/cmds/cslt_probe.py
for s in "24576 4096" "4096 12288"; do
  timeout 60 python3 $P $s 2048 >> $W/cslt.txt 2>&1; echo "cslt rc=$? $s at $(el) s" >> $W/times.txt
  for d in 0 0.25; do
    WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 60 $B $s $d c 2048 20 >> $W/harness.txt 2>&1
    echo "harness rc=$? $s d=$d at $(el) s" >> $W/times.txt
  done
done
grep -E "^N=|^kernels" $W/cslt.txt | cut -c1-260; grep -E '^N=' $W/harness.txt | cut -c1-260
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1); echo "ncu: $NCU" >> $W/times.txt
left() { local t=$(( ${LIM:-400} - $(el) )); [ $t -gt 120 ] && t=120; echo $t; }
t=$(left); [ $t -ge 30 ] && timeout $t $NCU --clock-control none --set full --profile-from-start off -c 3 -f \
  -o $W/libs_gate_up python3 $P 24576 4096 2048 prof > $W/ncu_libs.log 2>&1
echo "libs ncu rc=$? at $(el) s" >> $W/times.txt
$NCU --import $W/libs_gate_up.ncu-rep --page details > $W/details_libs_gate_up.txt 2>&1
prof() {  # name dense-fraction
  local t=$(left); [ $t -lt 30 ] && { echo "$1 skipped at $(el) s" >> $W/times.txt; return; }
  WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout $t $NCU --clock-control none --set full \
    -k "regex:spense_wgsp_ws_kernelILi4ELi2ELi1ELi128" -s 1 -c 1 -f -o $W/$1 $B 24576 4096 $2 c 2048 2 > $W/ncu_$1.log 2>&1
  echo "$1 ncu rc=$? at $(el) s" >> $W/times.txt
  $NCU --import $W/$1.ncu-rep --page details > $W/details_$1.txt 2>&1
}
prof plain0_gate_up 0
prof plain25_gate_up 0.25
cat $W/times.txt
for f in $W/details_*.txt; do echo "=== $f"; grep -E "^  [a-z_]|Duration|SM Frequency|Throughput|Mem Busy|Max Bandwidth|L2 Hit|Pipe|Issued|Active Warps|Registers|Achieved Occ|Shared Memory|Waves|Grid Size|Block Size|Executed Ipc" $f | head -60; done | cut -c1-130
