#!/usr/bin/env bash
# call 4: our dense and Spense 25 % BF16 8B steps at B = 1 beside gpt-fast's compiled dense model, one call.
set -u
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
OUT=$OUT/e2e SPENSE_COMMIT=ad799ae SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so LAYERS=36 BATCHES=1 STAGE_SCALE=3 \
  NORESERVE=1 BUDGET=${BUDGET:-440} ONLY="bw dense_bf16 spense_bf16 anchor" ANCHOR_B=1 bash benchmarks/run_e2e.sh
cd $OUT && tar czf e2e.tgz e2e && rm -rf e2e
