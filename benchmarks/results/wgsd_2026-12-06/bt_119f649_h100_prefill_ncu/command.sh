#!/usr/bin/env bash
# forty-seventh stop: issue 9's prefill (wgsp 0.96-1.10x at M = 2048 against 1.2x) - ncu (--set full, clocks left
# alone) on one launch of cuBLAS's dense GEMM and of spense_wgsp_ws_kernel at M = 2048 on 8B.gate_up and 8B.down
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bt}; mkdir -p $W; cp .carry/cmds/n22.sh $W/command.sh; cp .carry/cmds/prof_prefill.py $W/
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1); echo "ncu: $NCU" >> $W/times.txt
prof() {  # mode shape kernel-regex
  local t=$(( ${LIM:-580} - $(el) )); [ $t -gt 150 ] && t=150; [ $t -lt 40 ] && { echo "$1 $2 skipped at $(el) s" >> $W/times.txt; return; }
  python .carry/cmds/prof_prefill.py $1 $2 2048 >> $W/eager.txt 2>&1
  timeout $t $NCU --clock-control none --set full -k "regex:$3" -s 2 -c 1 -f -o $W/$1_$2 \
    python .carry/cmds/prof_prefill.py $1 $2 2048 > $W/ncu_$1_$2.log 2>&1
  echo "$1 $2 ncu rc=$? at $(el) s" >> $W/times.txt
  $NCU --import $W/$1_$2.ncu-rep --page details > $W/details_$1_$2.txt 2>&1
}
prof dense 8B.gate_up "gemm|nvjet|sm90|cutlass"
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
prof wgsp 8B.gate_up wgsp_ws
prof dense 8B.down "gemm|nvjet|sm90|cutlass"
prof wgsp 8B.down wgsp_ws
cat $W/times.txt $W/eager.txt
for f in $W/details_*.txt; do echo "=== $f"; grep -E "^  [a-zA-Z]|Duration|Throughput|Pipe|Stall|Issued|Eligible|Active Warps|Registers|Shared Memory Config|Achieved Occ|L2 Hit|Mem Busy|Max Bandwidth|Executed Ipc" $f | head -60; done | cut -c1-130
