#!/usr/bin/env bash
# fifty-second stop (any GPU; letter cx): the 32B FP8 step at B = 1 and 8 (16 of 64 layers, prompt 512) on the table
# cw's sweep made (.carry/cmds/cfg_cw.json: the packaged H100 table with the 32B FP8 cells at M = 1 and 8 measured
# again) against the packaged table: dense FP8, Spense new, Spense packaged, Spense new again. LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cx}; mkdir -p $W; cp .carry/cmds/n43.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-32b --layers ${LAYERS:-16} --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0"
run() {  # name, limit, variant, env assignments...
  local n=$1 lim=$2 v=$3; shift 3
  t=$(( ${LIM:-570} - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "dense fp8" 130 dense-fp8 X=1
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
run "spense fp8 new" 110 spense0.25-fp8 SPENSE_MMASP_CFG=.carry/cmds/cfg_cw.json
run "spense fp8 packaged" 110 spense0.25-fp8 X=1
run "spense fp8 new again" 110 spense0.25-fp8 SPENSE_MMASP_CFG=.carry/cmds/cfg_cw.json
cat $W/times.txt; grep -E "^==|^qwen3|launch configs from a cell|step" $W/log.txt | cut -c1-200 | tail -30
