#!/usr/bin/env bash
# fifty-fifth stop, second call (any GPU; letter from $LETTER): the prefill trial form, now also persistent and with the metadata a step ahead (ncu of both), that reads A from shared memory (SSA,
# benchmarks/wgsp_ss_check.cu), built here with cuBLAS: correctness on small shapes (both descriptor variants against
# the register decode kernel), memcheck, then in turn with the plain form and cuBLAS at M = 2048 on the four issue-9
# shapes at 25 % dense columns and at 0 %, 8B.gate_up at 25 % rows; then 8B.gate_up sustained (at the power cap)
set -u
T0=$(date +%s); W=$OUT/${LETTER:-dm}; mkdir -p $W; cp .carry/cmds/n58.sh $W/command.sh
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
echo "cublas: ${CB:-not found}" > $W/build.txt
B=/tmp/wgsp_ss_check
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc \
  benchmarks/wgsp_ss_check.cu $CB -o $B >> $W/build.txt 2>&1 || { tail -20 $W/build.txt; exit 1; }
echo "built at $(el) s" >> $W/times.txt
for a in "256 1024 0.25 c 200" "256 1024 0.25 r 200" "512 2048 0.5 c 130" "256 960 0.25 c 300" "512 192 0.25 r 130" \
         "1024 4096 0.25 r 1000"; do
  timeout 60 $B $a 1 1 >> $W/harness.txt 2>&1; echo "rc=$? $a at $(el) s" >> $W/times.txt
done
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 $B 256 1024 0.25 c 200 1 1 > $W/memcheck.txt 2>&1
echo "memcheck rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; cat $W/harness.txt | cut -c1-200
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 250 > $W/smi.csv 2>&1 &
SMI=$!
for d in 0.25 0; do
  for s in "24576 4096" "4096 12288" "51200 5120" "5120 25600"; do
    timeout 90 $B $s $d c 2048 20 5 >> $W/harness.txt 2>&1; echo "rc=$? $s $d c at $(el) s" >> $W/times.txt
  done
done
timeout 90 $B 24576 4096 0.25 r 2048 20 5 >> $W/harness.txt 2>&1; echo "rc=$? 24576 4096 0.25 r at $(el) s" >> $W/times.txt
echo "# sustained" >> $W/harness.txt
for d in 0.25 0; do
  timeout 120 $B 24576 4096 $d c 2048 300 7 >> $W/harness.txt 2>&1; echo "rc=$? sustained $d at $(el) s" >> $W/times.txt
done
kill $SMI
SEC="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
     --section MemoryWorkloadAnalysis_Tables --section MemoryWorkloadAnalysis"
for k in ELb0ELi1EE ELb0ELi0EE ELb0ELi3EE; do  # SS, plain, SS with the metadata ahead: CTAs of 16 row tiles
  timeout 100 ncu --clock-control none -k "regex:spense_wgsp_ws_kernelILi4ELi2ELi1ELi128ELi1E$k" -c 1 $SEC \
    $B 24576 4096 0 c 2048 1 1 > $W/ncu_$k.txt 2>&1; echo "ncu $k rc=$? at $(el) s" >> $W/times.txt
done
grep -E "Duration|SM Frequency|Tensor|Issue Slots Busy|Shared|Bank|No Eligible|Stall" $W/ncu_*.txt | cut -c1-200 | head -60
grep -E "^ss|^#" $W/harness.txt | cut -c1-260; tail -3 $W/times.txt
