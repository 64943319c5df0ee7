#!/usr/bin/env bash
# fifty-fifth stop, last call (any GPU; letter from $LETTER): SSA 4 (the decode layout, each step's boxes reordered
# into the SS layout in the slot by the producer's warps 1-3) against the reference on small shapes, memcheck, then
# timed in turn with cuBLAS, the plain form and the SS form at M = 2048 (the four issue-9 shapes at 25 % dense
# columns, 8B.gate_up at 0 %), then ncu (kernel names matched mangled) of SSA 4 and SSA 1 on 8B.gate_up at 0 %
set -u
T0=$(date +%s); W=$OUT/${LETTER:-dn}; mkdir -p $W; cp .carry/cmds/n60.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
CB=""
for d in "${CUDA_HOME:-/usr/local/cuda}" \
         "$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))' 2>/dev/null)"; do
  lib=$(ls "$d"/lib64/libcublas.so* "$d"/lib/libcublas.so* 2>/dev/null | head -1)
  if [ -n "$d" ] && [ -f "$d/include/cublas_v2.h" ] && [ -n "$lib" ]; then
    CB="-DWGSP_CUBLAS -I$d/include -L$(dirname "$lib") -l:$(basename "$lib") -Xlinker -rpath=$(dirname "$lib")"; break
  fi
done
B=/tmp/wgsp_ss_check
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I src/spense/runtime/csrc benchmarks/wgsp_ss_check.cu $CB \
  -o $B > $W/times.txt 2>&1 || { tail -20 $W/times.txt; exit 1; }
echo "built at $(el) s" >> $W/times.txt
for a in "256 1024 0.25 c 200" "512 2048 0.5 c 130" "256 960 0.25 c 300" "512 192 0.25 r 130" "1024 4096 0.25 r 1000"; do
  timeout 60 $B $a 1 1 >> $W/harness.txt 2>&1; echo "rc=$? $a at $(el) s" >> $W/times.txt
done
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 $B 256 1024 0.25 c 200 1 1 > $W/memcheck.txt 2>&1
echo "memcheck rc=$? at $(el) s" >> $W/times.txt
for s in "24576 4096 0.25" "4096 12288 0.25" "51200 5120 0.25" "5120 25600 0.25" "24576 4096 0"; do
  timeout 60 $B $s c 2048 20 5 >> $W/harness.txt 2>&1; echo "rc=$? $s at $(el) s" >> $W/times.txt
done
SEC="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
     --section MemoryWorkloadAnalysis_Tables --section MemoryWorkloadAnalysis --section LaunchStats"
for k in ELb0ELi4EE ELb0ELi1EE; do
  timeout 60 ncu --clock-control none --kernel-name-base mangled \
    -k "regex:spense_wgsp_ws_kernelILi4ELi2ELi1ELi128ELi1E$k" -c 1 $SEC $B 24576 4096 0 c 2048 1 1 \
    > $W/ncu_$k.txt 2>&1; echo "ncu $k rc=$? at $(el) s" >> $W/times.txt
done
cat $W/times.txt | tail -14; tail -1 $W/memcheck.txt
grep -E "M=2048" $W/harness.txt | grep -oE "N=[0-9]+ K=[0-9]+ d=[0-9.]+|cublas [0-9.]+ us|plain [0-9.]+ us \([0-9.]+x\)|ss1 [0-9.]+ us \([0-9.]+x|ss4 [0-9.]+ us \([0-9.]+x; [0-9.]+x|rel_diff persistent.*" | paste -sd' ' | sed 's/N=/\nN=/g'
grep -hE "^ +(Duration|SM Frequency|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible)" $W/ncu_*.txt
