#!/usr/bin/env bash
# fifty-first stop (any GPU; letter cu): the 32B BF16 step at B = 8 (8 of 64 layers, prompt 512) with the H100 table's
# five new RT = 1 cells (the engine takes a 32B layer's M = 4 cell at M = 8) against the table before them
# (SPENSE_MMASP_CFG=.carry/cmds/cfg_h100_pre51.json, the table at c327ed5), new / old / new, then dense. LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cu}; mkdir -p $W; cp .carry/cmds/n40.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
[ -f /tmp/spense_mmasp.so ] || timeout 150 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-32b --layers 8 --batches 8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0"
run() {  # name, variant, env assignments...
  local n=$1 v=$2; shift 2
  t=$(( ${LIM:-230} - $(el) )); [ $t -gt 60 ] && t=60; [ $t -lt 25 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M --variants $v >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense new table" spense0.25 X=1
run "spense old table" spense0.25 SPENSE_MMASP_CFG=.carry/cmds/cfg_h100_pre51.json
run "spense new table again" spense0.25 X=1
run "dense" dense X=1
cat $W/times.txt; grep -E "^== |step|ms" $W/log.txt | grep -v "^\s*$" | cut -c1-200 | tail -30
