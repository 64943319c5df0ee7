#!/usr/bin/env bash
# forty-ninth stop, for a later one (call 2 of 2, on n30's machine, letter ch): the 8B FP8 pair at B = 32 (issue 12's
# 1.087x against 1.1x, v62) by default and with SPENSE_WGSD_EXP=104449 (bit 65536 on the stream-K kernels at tiles
# of 32 tokens; dense FP8's `sk` layer takes it too), in the order dense, Spense, Spense 104449, dense 104449.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so
T0=$(date +%s); W=$OUT/${LETTER:-ch}; mkdir -p $W; cp .carry/cmds/n31.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name --format=csv,noheader > $W/gpu.txt; echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 32"
run() {  # name, cap, variant, env assignments...
  local n=$1 cap=$2 v=$3; shift 3
  local t=$(( ${LIM:-560} - $(el) )); [ $t -gt $cap ] && t=$cap; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "dense fp8" 150 dense-fp8
run "spense fp8" 110 spense0.25-fp8
run "spense fp8 104449" 110 spense0.25-fp8 SPENSE_WGSD_EXP=104449
run "dense fp8 104449" 110 dense-fp8 SPENSE_WGSD_EXP=104449
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-120
