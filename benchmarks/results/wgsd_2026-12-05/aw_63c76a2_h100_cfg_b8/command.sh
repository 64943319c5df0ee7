#!/usr/bin/env bash
# forty-first stop, calls 3 and 4 on the machine av left warm (the extension built there; av's table carried as
# .carry/cmds/cfg_h100.json = av_63c76a2_h100_cfg_sweep/cfg_here.json): Spense 25 % FP8 at B = 8 on av's launch-config
# table and on the built-in one.  Call 3 (log_first.txt, rows_first.jsonl) looked for the table under $OUT, which the
# call had emptied: its first run failed, its second (built-in configs) ran.  Call 4 (log.txt, rows.jsonl), as run:
export PYTHONPATH=src SPENSE_MMASP_SO=/tmp/spense_mmasp.so PYTHONUNBUFFERED=1; W=$OUT/aw; mkdir -p $W; M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw /work/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0 --batches 8"; python -m spense.engine.measure --bw-only --bw /work/bw.json --device cuda > $W/log.txt 2>&1; SPENSE_MMASP_CFG=.carry/cmds/cfg_h100.json timeout 80 $M --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "cfg here rc=$?"; timeout 70 $M --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "builtin rc=$?"; grep -E "^qwen3|launch configs" $W/log.txt | cut -c1-160
