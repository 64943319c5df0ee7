#!/usr/bin/env bash
# thirty-third stop, call 4 (same machine as call 3, its extension kept): the 8B FP8 pair at B = 1 and 8 on the new table
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ai; mkdir -p $W; cp .carry/cmds/i4.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
if [ -f /tmp/spense_mmasp.so ]; then export SPENSE_MMASP_SO=/tmp/spense_mmasp.so; echo "extension kept" > $W/times.txt
else echo "no extension: dense only" > $W/times.txt; fi
echo "commit ${SPENSE_COMMIT:-unknown}" > $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
timeout 150 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
[ -n "${SPENSE_MMASP_SO:-}" ] && timeout $(( 340 - $(el) )) $M --variants spense0.25-fp8 >> $W/log.txt 2>&1
echo "spense fp8 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-250
cd $OUT && tar czf ai.tgz ai && rm -rf ai
