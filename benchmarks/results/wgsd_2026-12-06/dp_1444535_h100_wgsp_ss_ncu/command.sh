#!/usr/bin/env bash
# fifty-sixth stop (any GPU; letter from $LETTER): the SS prefill form against the plain form and cuBLAS on 8B.gate_up
# at M = 2048: timed at 25 % dense columns, 0 %, and all rows dense (the dense steps alone), then ncu --set full of
# one launch each (kernel names matched by a plain prefix; cuBLAS by nvjet|gemm|xmma) with the per-instruction stall
# samples of the SS form (--page source)
set -u
T0=$(date +%s); W=$OUT/${LETTER:-dp}; mkdir -p $W
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
for s in "24576 4096 0.25 c" "24576 4096 0 c" "24576 4096 1 r"; do
  timeout 60 $B $s 2048 20 5 >> $W/harness.txt 2>&1; echo "rc=$? $s at $(el) s" >> $W/times.txt
done
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
mkdir -p /tmp/rep
for s in "0.25 c" "1 r"; do
  t=${s// /}
  timeout 100 $NCU --clock-control none --set full --import-source no -k "regex:spense_wgsp_ws_kernel" -c 2 -f \
    -o /tmp/rep/ours_$t $B 24576 4096 $s 2048 1 1 > $W/ncu_log_$t.txt 2>&1; echo "ncu ours $t rc=$? at $(el) s" >> $W/times.txt
  $NCU --import /tmp/rep/ours_$t.ncu-rep --page details > $W/details_ours_$t.txt 2>&1
done
timeout 60 $NCU --clock-control none --set full -k "regex:nvjet|gemm|xmma|cutlass" -c 1 -f -o /tmp/rep/cublas \
  $B 24576 4096 0.25 c 2048 1 1 > $W/ncu_log_cublas.txt 2>&1; echo "ncu cublas rc=$? at $(el) s" >> $W/times.txt
$NCU --import /tmp/rep/cublas.ncu-rep --page details > $W/details_cublas.txt 2>&1
# per-instruction stall samples of both launches profiled at 25 % (plain form, then the SS form)
$NCU --import /tmp/rep/ours_0.25c.ncu-rep --page source --print-source sass --csv \
  > /tmp/rep/src_ss.csv 2> /tmp/rep/src_ss.err; echo "source page rc=$? $(wc -c < /tmp/rep/src_ss.csv) B" >> $W/times.txt
cat $W/ncu_log_*.txt >> $W/ncu_logs.txt; rm -f $W/ncu_log_*.txt
tar czf $W/reps.tgz -C /tmp/rep . 2>/dev/null
cat $W/times.txt | tail -9
grep -oE "ss N=[0-9]+ K=[0-9]+ d=[0-9.]+ axis=.|rel_diff plain [^|]*|cublas [0-9.]+ us, plain [0-9.]+ us \([0-9.]+x\), ss [0-9.]+ us \([0-9.]+x; [0-9.]+x" $W/harness.txt | paste -sd' ' | sed 's/ss N=/\nss N=/g'
grep -hE "^  [a-z_v]|Duration|SM Frequency|Compute \(SM\) Th|Issue Slots Busy|No Eligible|Tensor is|L1/TEX Cache Th|L2 Cache Th" $W/details_*.txt | cut -c1-140
