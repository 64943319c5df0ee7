#!/usr/bin/env bash
# GPU driver for the end-to-end decode benchmark (spense bench). Usage on the device machine:
#   SPENSE_COMMIT=<sha> bash benchmarks/run_e2e_bench.sh STAGE      (results under $OUT or ./out/e2e)
# STAGE: sanity | bf16 | fp8 | quality | all | vN-{cols,rows}-{bf16,fp8} (e.g. v2-cols-bf16, v3-rows-fp8)
#   (vN-*: batch 1,8, dense ratios 0,0.25 (cols) / 0.25 (rows), 128 decode steps, output name
#    e2e_vN_<axis>_<dtype>; SPENSE_MMASP_SO may point at a prebuilt mma.sp extension, see
#    spense.runtime.mmasp.export_extension)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out/e2e}; mkdir -p "$OUT"
STAGE=${1:-sanity}
B="python3 -m spense.bench"
log() { echo "=== $(date +%T) $*"; }
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader
python3 -c "import torch,transformers,triton;print('torch',torch.__version__,'transformers',transformers.__version__,'triton',triton.__version__)"
case "$STAGE" in
sanity)
  log dense qwen3-8b bf16+fp8
  timeout 240 $B qwen3-8b --dtype bf16,fp8 --batch 1,8 --prompt-len 512 --gen 64 --dense-ratio none \
      --out "$OUT" --name sanity_dense 2>&1 | grep -v "^|" ;
  log spense qwen3-8b bf16+fp8 r=0.25 B=1
  timeout 200 $B qwen3-8b --dtype bf16,fp8 --batch 1 --prompt-len 512 --gen 64 --dense-ratio 0.25 \
      --out "$OUT" --name sanity_spense 2>&1 | grep -v "^|" ;
  ;;
validate)
  log dense qwen3-8b bf16+fp8 fused ops
  timeout 150 $B qwen3-8b --dtype bf16,fp8 --batch 1,8 --prompt-len 512 --gen 64 --dense-ratio none \
      --out "$OUT" --name val_dense_fused 2>&1 | grep -v "^|" ;
  log dense qwen3-8b bf16 hf ops
  timeout 100 $B qwen3-8b --dtype bf16 --batch 1,8 --prompt-len 512 --gen 64 --dense-ratio none --hf-ops \
      --check-tokens 0 --out "$OUT" --name val_dense_hfops 2>&1 | grep -v "^|" ;
  bash "$0" quality ;;
bf16|fp8)
  log full matrix qwen3-8b $STAGE
  timeout ${MATRIX_TIMEOUT:-400} $B qwen3-8b --dtype $STAGE --batch 1,8,32 --prompt-len 512 --gen 128 \
      --dense-ratio 0,0.25,0.5 --out "$OUT" --name e2e_qwen3-8b_$STAGE 2>&1 | grep -v "^|" ;
  ;;
hfops)
  log dense qwen3-8b bf16 with transformers ops, for comparison
  timeout 100 $B qwen3-8b --dtype bf16 --batch 1,8 --prompt-len 512 --gen 128 --dense-ratio 0.25 --hf-ops \
      --check-tokens 0 --out "$OUT" --name e2e_qwen3-8b_bf16_hfops 2>&1 | grep -v "^|" ;
  ;;
quality)
  # real small model: perplexity BF16 dense / FP8 dense / Spense, and greedy-token identity on real text.
  # --backend cusparselt: BF16 decode through cuSPARSELt (FP8 -> the Triton FP8 kernel), which skips the
  # ~95 s build of the mma.sp extension on a fresh machine; speed on this 18M model is not a target.
  log quality models/default
  timeout 200 $B models/default --dtype bf16,fp8 --batch 1,8 --prompt-len 256 --gen 64 --dense-ratio 0,0.25,0.5 \
      --backend cusparselt --no-profile --ppl-text .carry/test.txt --ppl-seqlen 512 --ppl-windows 100 \
      --out "$OUT" --name e2e_default 2>&1 | grep -v "^|" ;
  ;;
v[0-9]*-cols-bf16|v[0-9]*-cols-fp8|v[0-9]*-rows-bf16|v[0-9]*-rows-fp8)
  VER=$(echo $STAGE | cut -d- -f1); AX=$(echo $STAGE | cut -d- -f2); DT=$(echo $STAGE | cut -d- -f3)
  R=0,0.25; [ "$AX" = rows ] && R=0.25
  log "$VER qwen3-8b $DT axis=$AX ratios $R"
  timeout ${MATRIX_TIMEOUT:-280} $B qwen3-8b --dtype $DT --axis $AX --batch 1,8 --prompt-len 512 --gen 128 \
      --dense-ratio $R --out "$OUT" --name e2e_${VER}_${AX}_${DT} 2>&1 | grep -v "^|" ;
  ;;
final)
  MATRIX_TIMEOUT=300 bash "$0" fp8
  bash "$0" quality ;;
all)
  for s in bf16 fp8 quality; do bash "$0" $s; done ;;
esac
log done
ls -la "$OUT"
