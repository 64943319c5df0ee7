#!/usr/bin/env bash
# forty-sixth stop, on an H100 (exits at once on another GPU): the BF16 8B pair at B = 8 on the packaged table (bk-bn's,
# 8c26ffc) first, then on the old one (ad850ff), dense BF16 between; checks v59's 0.29 ms gain in the other order
set -u
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H100 || { echo "not an H100: nothing run"; exit 3; }
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bq}; mkdir -p $W; cp .carry/cmds/n20.sh $W/command.sh; cp .carry/cmds/cfg_h100_old.json $W/
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 8"
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
run() {  # name, limit, variant, env assignments...
  local n=$1 lim=$2 v=$3; shift 3
  t=$(( 390 - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense bf16 packaged" 80 spense0.25
run "dense bf16" 70 dense
run "spense bf16 old table" 70 spense0.25 SPENSE_MMASP_CFG=$W/cfg_h100_old.json
run "spense bf16 packaged again" 70 spense0.25
run "spense bf16 old table again" 70 spense0.25 SPENSE_MMASP_CFG=$W/cfg_h100_old.json
cat $W/times.txt; grep -E "^==|^qwen3|launch configs from a cell" $W/log.txt | cut -c1-160
