#!/usr/bin/env bash
# second session, call 3: with dense linears through runtime.dense (the default), the 8B BF16 pair at B = 32 (the
# extension built meanwhile), then the 8B FP8 pair at B = 1, 8 (both FP8 models' bf16 lm_head goes through it too),
# then the README's GPU block test with what time is left
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext
T0=$(date +%s); W=$OUT/y; mkdir -p $W; cp .carry/cmds/d3.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
OUT=$W/b32 LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=350 ONLY="bw dense_bf16 spense_bf16" \
  bash benchmarks/run_e2e.sh
mv $W/b32/ext.tgz $W/ext.tgz 2>/dev/null
OUT=$W/fp8 SPENSE_MMASP_SO=/tmp/spense_mmasp.so LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 \
  BUDGET=$(( 545 - $(el) )) ONLY="bw dense_fp8 spense_fp8" bash benchmarks/run_e2e.sh
t=$(( 585 - $(el) ))
[ $t -gt 20 ] && SPENSE_MMASP_SO=/tmp/spense_mmasp.so timeout $t python -m pytest -q -m gpu tests/test_readme.py \
  -p no:cacheprovider > $W/readme_gpu.txt 2>&1; echo "readme rc=$? limit $t s" >> $W/readme_gpu.txt
cd $W && tar czf e2e.tgz b32 fp8 && rm -rf b32 fp8
