#!/usr/bin/env bash
# fifty-sixth stop (any GPU; letter from $LETTER): rings of sparse steps only (ws_sparse_ring: 5 and 6 slots of 34 KB
# instead of 4 of 48 KB) in the SS harness: memcheck and the reference on small layers of sparse steps, then the four
# issue-9 shapes at M = 2048, 0 % dense (every form timed in turn with cuBLAS, 5 rounds x 20 calls), 8B.gate_up at 25 %
set -u
T0=$(date +%s); W=$OUT/${LETTER:-dr}; mkdir -p $W
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
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc benchmarks/wgsp_ss_check.cu $CB \
  -o $B > $W/build.txt 2>&1 || { tail -20 $W/build.txt; exit 1; }
grep -v Advisory $W/build.txt > $W/b && mv $W/b $W/build.txt
echo "built at $(el) s" >> $W/times.txt
for a in "256 1024 0 c 200" "512 2048 0 c 130" "256 960 0 c 300" "1024 4096 0 c 1000"; do
  timeout 60 $B $a 1 1 >> $W/harness.txt 2>&1; echo "rc=$? $a at $(el) s" >> $W/times.txt
done
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 $B 256 1024 0 c 200 1 1 > $W/memcheck.txt 2>&1
echo "memcheck rc=$? at $(el) s" >> $W/times.txt
for s in "24576 4096 0" "4096 12288 0" "51200 5120 0" "5120 25600 0" "24576 4096 0.25"; do
  timeout 90 $B $s c 2048 20 5 >> $W/harness.txt 2>&1; echo "rc=$? $s at $(el) s" >> $W/times.txt
done
cat $W/times.txt; tail -1 $W/memcheck.txt
grep -E "M=2048" $W/harness.txt | grep -oE "^(ss|sparse_ring) N=[0-9]+ K=[0-9]+( d=[0-9.]+)?|cublas [0-9.]+ us|plain [0-9.]+ us \([0-9.]+x\)|ss [0-9.]+ us \([0-9.]+x|plain6 [0-9.]+ us \([0-9.]+x; [0-9.]+x|ss[56] [0-9.]+ us \([0-9.]+x; [0-9.]+x" | paste -sd' ' | sed -E 's/ (ss|sparse_ring) N=/\n\1 N=/g'
