#!/usr/bin/env bash
# fifty-second stop (any GPU; letter cz): the packaged table as committed (no override), 32B on 32 of 64 layers,
# prompt 512: Spense 25 % FP8 then dense FP8 at B = 1, 8 (cy's order reversed), dense BF16 then Spense 25 % BF16 at
# B = 8. LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cz}; mkdir -p $W; cp .carry/cmds/n45.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
run() {  # name, limit, variant, layers, batches, env assignments...
  local n=$1 lim=$2 v=$3 l=$4 b=$5; shift 5
  t=$(( ${LIM:-570} - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt
  env "$@" timeout $t python -m spense.engine.measure --model qwen3-32b --layers $l --batches $b --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0 --variants $v >> $W/log.txt 2>&1
  echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "fp8 spense 32L" 110 spense0.25-fp8 32 1,8 X=1
run "fp8 dense 32L" 120 dense-fp8 32 1,8 X=1
run "bf16 dense 32L" 90 dense 32 8 X=1
run "bf16 spense 32L" 90 spense0.25 32 8 X=1
cat $W/times.txt; grep -E "^==|^qwen3|launch configs from a cell" $W/log.txt | cut -c1-150
