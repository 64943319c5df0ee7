#!/usr/bin/env bash
# thirty-second stop, call 3: the greedy-token check with the backends' logit spread (noise_ulps): 32B dense at B = 1
# with the streaming dense kernel and with cuBLAS alone (SPENSE_DENSE_STREAM=0; v47 diverged at step 1 by 7 ulps),
# 8B dense, then 8B Spense 25 % BF16 and FP8 on the extension built meanwhile
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ac; mkdir -p $W; cp .carry/cmds/h3.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
( s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
  echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log ) &
BPID=$!
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --batches 1 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 32"
timeout 150 $M --model qwen3-32b --layers 64 --variants dense >> $W/log.txt 2>&1; echo "32b dense rc=$? at $(el) s" >> $W/times.txt
SPENSE_DENSE_STREAM=0 timeout 150 $M --model qwen3-32b --layers 64 --variants dense >> $W/log.txt 2>&1; echo "32b dense cublas rc=$? at $(el) s" >> $W/times.txt
timeout 80 $M --model qwen3-8b --layers 36 --variants dense >> $W/log.txt 2>&1; echo "8b dense rc=$? at $(el) s" >> $W/times.txt
wait $BPID; echo "build waited at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( 540 - $(el) )); [ $t -gt 20 ] && timeout $t $M --model qwen3-8b --layers 36 --variants spense0.25,spense0.25-fp8 >> $W/log.txt 2>&1
echo "8b spense rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-330
cd $OUT && tar czf ac.tgz ac && rm -rf ac
