#!/usr/bin/env bash
# second session, call 4: the 32B BF16 pair at B = 1, 8 with the dense linears through runtime.dense (the extension
# built meanwhile: the tool refused to carry call 3's beside the tree), then the README's GPU block test (the heads of
# WikiText-2's files carried for the tests' tiny model) with what time is left
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext
T0=$(date +%s); W=$OUT/z; mkdir -p $W; cp .carry/cmds/d4.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
OUT=$W/e2e MODEL=qwen3-32b LAYERS=64 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=475 \
  ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh
t=$(( 530 - $(el) ))
[ $t -gt 20 ] && SPENSE_MMASP_SO=/tmp/spense_mmasp.so SPENSE_DATA_DIR=$PWD/.carry/wt2 timeout $t python -m pytest -q \
  -m gpu tests/test_readme.py -p no:cacheprovider > $W/readme_gpu.txt 2>&1; echo "readme rc=$? limit $t s" >> $W/readme_gpu.txt
rm -f $W/e2e/ext.tgz; cd $W && tar czf e2e.tgz e2e && rm -rf e2e
