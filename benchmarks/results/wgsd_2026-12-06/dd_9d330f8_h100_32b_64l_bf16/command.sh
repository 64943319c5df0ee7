#!/usr/bin/env bash
# for a later stop (any GPU; letter from $LETTER): the whole 32B shape (64 layers) at B = 1, 8, prompt 512, the
# committed table: $VARIANTS in turn (default "dense-fp8 spense0.25-fp8"; BF16: VARIANTS="dense spense0.25").
# Checks 4281fa4's fix (fp8_dense frees each BF16 original in turn: dense FP8 at 64 layers ran out of an H100's memory
# before it, results wgsd_2026-12-06 cw) through each row's peak_mem_bytes. LIM caps it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-da}; mkdir -p $W; cp .carry/cmds/n46.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
for v in ${VARIANTS:-dense-fp8 spense0.25-fp8}; do
  case $v in spense*) while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done
                      export SPENSE_MMASP_SO=/tmp/spense_mmasp.so;; esac
  t=$(( ${LIM:-570} - $(el) )); [ $t -gt 300 ] && t=300; [ $t -lt 60 ] && { echo "$v skipped at $(el) s" >> $W/times.txt; continue; }
  echo "== $v" >> $W/log.txt
  timeout $t python -m spense.engine.measure --model qwen3-32b --layers 64 --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0 --variants $v >> $W/log.txt 2>&1
  echo "$v rc=$? at $(el) s" >> $W/times.txt
done
cat $W/times.txt; grep -E "^==|^qwen3|launch configs from a cell|Error" $W/log.txt | cut -c1-170
