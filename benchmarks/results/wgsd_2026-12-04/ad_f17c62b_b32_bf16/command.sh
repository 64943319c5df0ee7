#!/usr/bin/env bash
# thirty-second stop, call 4: the 8B BF16 pair at B = 32 on dense_table.json after the margin rule (v47's B = 32 ran on
# the cells before it), the extension of call 3 if the machine kept it
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
W=$OUT/ad; mkdir -p $W; cp .carry/cmds/h4.sh $W/command.sh
[ -f /tmp/spense_mmasp.so ] && export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
OUT=$W/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=380 ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh
rm -f $W/e2e/ext.tgz; grep -hv skipped $W/e2e/stages.txt; grep -hE "^qwen3" $W/e2e/log.txt | cut -c1-300
cd $OUT && tar czf ad.tgz ad && rm -rf ad
