#!/usr/bin/env bash
# forty-third stop, call 2 (right after n9.sh, on its machine): Spense 25 % FP8 at B = 1, 8 with the default attention
# and again with n9's best setting (/tmp/best.env), and the dense FP8 default once more, in one call
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1 SPENSE_MMASP_SO=/tmp/spense_mmasp.so
T0=$(date +%s); W=$OUT/${LETTER:-bd}; mkdir -p $W; cp .carry/cmds/n10.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
B="$(cat /tmp/best.env 2>/dev/null || echo ${BEST:-SPENSE_ATTN_PREFETCH=1})"; echo "best: $B" >> $W/times.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() {  # name, limit, end-by, args..., then env assignments after --
  local n=$1 lim=$2 end=$3; shift 3; local a=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do a+=("$1"); shift; done; shift
  t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M "${a[@]}" >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 default" 120 ${END:-400} --batches 1,8 --variants spense0.25-fp8 -- SPENSE_ATTN_PREFETCH=0
run "spense fp8 best" 100 ${END:-400} --batches 1,8 --variants spense0.25-fp8 -- $B
run "dense fp8 best" 100 ${END:-400} --batches 1,8 --variants dense-fp8 -- $B
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-120
