#!/usr/bin/env bash
# fifty-seventh stop (any GPU; letter from $LETTER): the bf16 decode kernels on the SS layout with one 16-byte load a
# fragment and a quad transpose by shuffles (-DSPENSE_SSL_LDG128) against the fragment order, beside the four 4-byte
# loads of dq (the default build), in turn per case: memcheck on small shapes, then six Qwen3 shapes at M = 1, 8, 16,
# RT = 1 and 2, 8 warps
set -u
T0=$(date +%s); W=$OUT/${LETTER:-dv}; mkdir -p $W; cp .carry/cmds/q2.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
C="nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc -Ibenchmarks benchmarks/mmasp_ss_check.cu"
$C -DSPENSE_SSL_LDG128 -o /tmp/ss128 > $W/build128.txt 2>&1 &
$C -o /tmp/ss32 > $W/build32.txt 2>&1; wait
[ -x /tmp/ss128 ] && [ -x /tmp/ss32 ] || { tail -5 $W/build*.txt; exit 1; }
echo "built at $(el) s" >> $W/times.txt
for a in "512 1024 0.25 c 1 1" "512 1024 0.25 c 8 2" "1024 1024 0.25 c 16 1" "512 1024 0.25 r 16 2"; do
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 /tmp/ss128 $a 8 2 1 >> $W/memcheck.txt 2>&1
  echo "memcheck rc=$? $a at $(el) s" >> $W/times.txt
done
for s in "24576 4096" "5120 25600" "51200 5120" "4096 12288" "6144 4096" "4096 4096"; do
  for m in 1 8 16; do
    for rt in 1 2; do
      [ $(el) -gt ${STOP_AT:-520} ] && continue
      for b in ss128 ss32; do
        timeout 60 /tmp/$b $s 0.25 c $m $rt 8 50 5 | sed "s/^/$b /" >> $W/harness.txt 2>&1
        echo "rc=$? $b $s M=$m RT=$rt at $(el) s" >> $W/times.txt
      done
    done
  done
done
grep -c "rc=0" $W/times.txt; grep -v "rc=0" $W/times.txt | tail -5; grep -h "ERROR SUMMARY" $W/memcheck.txt
grep -oE "^ss[0-9]+|N=[0-9]+ K=[0-9]+|M=[0-9]+ RT=[0-9]|same bits [01]|copy [0-9]+ GB/s|ext [0-9.]+ us [0-9]+ GB/s|(ext_ss|xs_ss|xs_c_ss) over [a-z_]+ [0-9.]+x" \
  $W/harness.txt | paste -sd' ' | sed 's/ ss\([0-9]\)/\nss\1/g'
