#!/usr/bin/env bash
# End-to-end engine run: ONE device call, <= BUDGET s wall in total (docs/e2e.md).
#   OUT=<dir> [LAYERS=12] [BUDGET=270] [SPENSE_MMASP_SO=/tmp/spense_mmasp.so] [SKIP="whole_bf16 ..."] bash benchmarks/run_e2e.sh
#   ONLY="bw dense_bf16 spense_bf16": only the stages named (SKIP: all but those named)
# AB_VARIANTS: the variants of the A/B stages that run both Spense precisions (default
# spense0.25,spense0.25-fp8).  Stages run as separate python processes, each under its own `timeout`, most important first; a
# failing stage never stops the next.  $OUT keeps at most 8 files at any time: gpu.txt, stages.txt
# (per-stage rc + seconds), build.log, bw.json, rows.jsonl (one JSON row per line, appended as soon
# as it exists), log.txt (every stage's output), anchor.txt; and ext.tgz, the extension built here (to carry to a later
# call: unpack under .carry/ext, SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so).  BUILD_TIMEOUT (default 330 s): the
# background build's limit (alone ~110-150 s; 218 s beside a dense stage); the dense stages run meanwhile, and the
# first stage that needs the extension waits for it.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/spense_ext} SPENSE_CACHE=${SPENSE_CACHE:-/tmp/spense_cache}
OUT=${OUT:-out}; mkdir -p "$OUT"
LAYERS=${LAYERS:-12}; BUDGET=${BUDGET:-270}; MODEL=${MODEL:-qwen3-8b}; BATCHES=${BATCHES:-1,8}
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} model $MODEL layers $LAYERS batches $BATCHES budget $BUDGET s" >> "$OUT/gpu.txt"
DEVICE=${DEVICE:-cuda}; PROMPT=${PROMPT:-512}; GEN=${GEN:-64}  # DEVICE=cpu MODEL=qwen3-tiny LAYERS=2 PROMPT=16 GEN=8: CPU smoke test
M="python -m spense.engine.measure --model $MODEL --layers $LAYERS --batches $BATCHES --out $OUT/rows.jsonl --bw $OUT/bw.json --device $DEVICE --prompt-len $PROMPT"

# stage NAME MAX_SECONDS RESERVE command...: run with timeout min(MAX, left - RESERVE); skip if < 15 s
stage() {
  local name=$1 max=$2 reserve=$3; shift 3
  [ "${NORESERVE:-0}" = 1 ] && reserve=0  # NORESERVE=1: no time kept for later stages (most are skipped)
  max=$(( max * ${STAGE_SCALE:-1} ))  # STAGE_SCALE=3: e.g. LAYERS=36 (build and compile grow with the layers)
  case " ${SKIP:-} " in *" $name "*) echo "$name skipped (SKIP)" >> "$OUT/stages.txt"; return;; esac
  if [ -n "${ONLY:-}" ]; then  # ONLY="bw dense_bf16 ...": these stages and no others
    case " $ONLY " in *" $name "*) ;; *) echo "$name skipped (ONLY)" >> "$OUT/stages.txt"; return;; esac
  fi
  local t=$(( $(left) - reserve )); [ "$t" -gt "$max" ] && t=$max
  if [ "$t" -lt 15 ]; then echo "$name skipped (left $(left) s)" >> "$OUT/stages.txt"; return; fi
  local s=$(date +%s)
  echo "===== $name (timeout $t s, at $(( s - T0 )) s)" >> "$OUT/log.txt"
  timeout -k 5 "$t" "$@" >> "$OUT/log.txt" 2>&1
  local rc=$?
  echo "$name rc=$rc $(( $(date +%s) - s )) s (timeout $t, ended at $(( $(date +%s) - T0 )) s)" >> "$OUT/stages.txt"
}

# (a) the mma.sp extension: prebuilt by an earlier call on the same machine (SPENSE_MMASP_SO), else
#     built here in the background (CPU, ~2 min) while the GPU measures dense BF16
if [ -z "${SPENSE_MMASP_SO:-}" ] || [ ! -f "${SPENSE_MMASP_SO:-}" ]; then
  ( s=$(date +%s)
    timeout "${BUILD_TIMEOUT:-330}" python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" \
        > "$OUT/build.log" 2>&1
    echo "build rc=$? $(( $(date +%s) - s )) s" >> "$OUT/build.log" ) &
  BPID=$!
else
  BPID=""; echo "prebuilt extension $SPENSE_MMASP_SO" > "$OUT/build.log"
fi
# (b) copy bandwidth (1 GiB, eager copy_ and an SM kernel, read + write, CUDA events over 20 reps)
stage bw 40 150 python -m spense.engine.measure --bw-only --bw "$OUT/bw.json" --device $DEVICE
# (c) Qwen3-8B shape (first $LAYERS layers), random weights: dense BF16 compiled
stage dense_bf16 170 300 $M --gen $GEN --variants dense
# ext_wait: before the first stage that runs the extension, wait for its build (if any), then take and export it
ext_wait() {
  [ -n "$BPID" ] || return 0
  wait $BPID; BPID=""
  if grep -q "^build rc=0 " "$OUT/build.log" && [ -f /tmp/spense_mmasp.so ]; then
    export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
    tar czf "$OUT/ext.tgz" -C /tmp spense_mmasp.so spense_mmasp.so.src
  fi
}
# runs NAME: whether ONLY / SKIP let stage NAME run
runs() {
  case " ${SKIP:-} " in *" $1 "*) return 1;; esac
  [ -z "${ONLY:-}" ] && return 0
  case " $ONLY " in *" $1 "*) return 0;; esac
  return 1
}
runs spense_bf16 && ext_wait
#     Spense 25 % BF16 compiled (magnitude 2:4 + packing + kernel layout on the GPU)
stage spense_bf16 170 200 $M --gen $GEN --variants spense0.25
#     A/B stages of Spense 25 % BF16 under other settings, given as environment assignments (e.g.
#     AB1_ENV="SPENSE_WGSD_EXP=7" AB2_ENV="SPENSE_WGSD_EXP=7 SPENSE_WGSD_SK=1"); skipped where unset
[ -n "${AB1_ENV:-}${AB2_ENV:-}" ] && ext_wait
[ -n "${AB1_ENV:-}" ] && ( export $AB1_ENV; stage ab1 170 0 $M --gen $GEN --variants spense0.25 )
[ -n "${AB2_ENV:-}" ] && ( export $AB2_ENV; stage ab2 170 0 $M --gen $GEN --variants spense0.25 )
#     dense BF16 alone under other settings (AB_DENSE_ENV, e.g. "SPENSE_MAX_AUTOTUNE=1": Inductor's max-autotune for
#     its GEMMs and kernels, a faster dense baseline if it finds one; "SPENSE_DENSE_STREAM=0": cuBLAS alone for the plain
#     linears, the dense model before runtime.dense, v47); skipped where unset
[ -n "${AB_DENSE_ENV:-}" ] && ( export $AB_DENSE_ENV; stage ab_dense 250 0 $M --gen $GEN --variants dense )
#     the BF16 pair, dense and Spense 25 %, again under other settings (AB_BF16_ENV, e.g. "SPENSE_ATTN_MAX_PROGRAMS=128":
#     what changes both models' steps); skipped where unset
[ -n "${AB_BF16_ENV:-}" ] && ( export $AB_BF16_ENV; stage ab_bf16 340 0 $M --gen $GEN --variants dense,spense0.25 )
#     FP8: the FP8 dense baseline (Fp8Linear: best of our weight-only kernel and _scaled_mm) and Spense
#     25 % (mma.sp FP8); FP8_FLAGS="--no-compile": CUDA graphs of the eager step instead of compiled
# (the FP8 dense model's stream-K kind `sk` runs on the extension, taken at the M = 64 bucket: batches above 32 wait)
for b in ${BATCHES//,/ }; do [ "$b" -gt 32 ] && ext_wait; done
stage dense_fp8 150 150 $M --gen $GEN --variants dense-fp8 ${FP8_FLAGS:-}
ext_wait  # (every later stage but the anchor runs it)
stage spense_fp8 90 100 $M --gen $GEN --variants spense0.25-fp8 ${FP8_FLAGS:-}
#     the FP8 pair again under other settings (AB_FP8_ENV, e.g. "SPENSE_WGSD_EXP=2049": x in f16 for e4m3 in
#     the stream-K form, for Spense FP8 and for the FP8 dense kind sk alike); skipped where unset
[ -n "${AB_FP8_ENV:-}" ] && ( export $AB_FP8_ENV; stage ab_fp8 240 0 $M --gen $GEN --variants dense-fp8,spense0.25-fp8 ${FP8_FLAGS:-} )
#     Spense FP8 alone again under other settings (AB_SPFP8_ENV, e.g. "SPENSE_WGSD_MIN_M=1": the stream-K form
#     at every M instead of the mma.sp kernel at the smallest), and a second such (AB2_SPFP8_ENV); skipped where unset
[ -n "${AB_SPFP8_ENV:-}" ] && ( export $AB_SPFP8_ENV; stage ab_spense_fp8 90 0 $M --gen $GEN --variants spense0.25-fp8 ${FP8_FLAGS:-} )
[ -n "${AB2_SPFP8_ENV:-}" ] && ( export $AB2_SPFP8_ENV; stage ab2_spense_fp8 90 0 $M --gen $GEN --variants spense0.25-fp8 ${FP8_FLAGS:-} )
#     any other variants, e.g. the dense ratios 0 and 0.5 (EXTRA="spense0,spense0.5,spense0-fp8,spense0.5-fp8")
[ -n "${EXTRA:-}" ] && stage extra 300 0 $M --gen $GEN --variants "$EXTRA"
#     the gpt-fast anchor (shared/anchors' gptfast_decode.py: the Qwen3-8B shape at all 36 layers, whatever LAYERS
#     says): only with .gptfast/{model.py,gptfast_decode.py} carried and >= 170 s left (ANCHOR_B: its batch sizes,
#     default the first of BATCHES)
if runs anchor && [ -f .gptfast/model.py ] && [ -f .gptfast/gptfast_decode.py ] && [ "$(left)" -ge 170 ]; then
  stage anchor 300 60 python3 .gptfast/gptfast_decode.py "${ANCHOR_B:-${BATCHES%%,*}}"
  grep '^{"gpu"' "$OUT/log.txt" | tail -1 > "$OUT/anchor.txt"  # (its JSON line; not bw's)
elif runs anchor; then
  echo "anchor skipped (left $(left) s, or .gptfast/ not carried)" >> "$OUT/stages.txt"
else
  echo "anchor skipped (ONLY / SKIP)" >> "$OUT/stages.txt"
fi
#     whole dense layers at the same dense share (cuBLAS for them, 2:4 kernels for the rest)
stage whole_bf16 130 60 $M --gen $GEN --variants whole0.25
# (d) profiler breakdown per op class of the compiled step (PROFILE_FLAGS="--no-compile": of the eager one), B=1
stage profile 90 0 $M --variants dense,spense0.25 --batches 1 ${PROFILE_FLAGS:-} --profile --check-tokens 0 --gen 24
#     the mma.sp kernel launched plainly (SPENSE_MMASP_PDL=0; the default since e2e v15 launches it dependent
#     on the kernel that writes x, its first weights loaded before it waits)
( export SPENSE_MMASP_PDL=0; stage spense_nopdl 170 0 $M --gen $GEN --variants ${AB_VARIANTS:-spense0.25,spense0.25-fp8} )
#     ... and launched dependent with the next kernel freed right after the wait (SPENSE_MMASP_PDL=2)
( export SPENSE_MMASP_PDL=2; stage spense_pdl2 170 0 $M --gen $GEN --variants ${AB_VARIANTS:-spense0.25,spense0.25-fp8} )
#     its software-pipelined instantiation (SPENSE_MMASP_PF=1)
( export SPENSE_MMASP_PF=1; stage spense_pf 170 0 $M --gen $GEN --variants spense0.25 )
#     without the shared-x kernel (SPENSE_MMASP_XS=0: the register kernel at every M; the default takes
#     the shared-x kernel above M = 8 on big layers, split over K above M = 16 on the others): BATCHES 16, 32
( export SPENSE_MMASP_XS=0; stage spense_reg 170 0 $M --gen $GEN --variants spense0.25 )
#     ... and the split already above M = 8 (SPENSE_MMASP_XS=1 SPENSE_MMASP_XS_SPLIT=1)
( export SPENSE_MMASP_XS=1 SPENSE_MMASP_XS_SPLIT=1; stage spense_xs_split 170 0 $M --gen $GEN --variants spense0.25 )
#     the other attention paths against the default (split, the split-KV decode kernel, since v9):
#     math = SDPA's math backend (the default before v9; it copies K and V to float32 every layer and
#     step), matmul = two bf16 GEMMs
for a in ${ATTN_AB:-math matmul}; do
  ( export SPENSE_ATTENTION=$a; stage "attn_$a" 170 0 $M --gen $GEN --variants dense,spense0.25 )
done
#     programmatic dependent launch across the step: Inductor's Triton kernels launched so and waiting
#     with gdc_wait (TORCHINDUCTOR_ENABLE_PDL=1), dense and Spense; then with the mma.sp kernel launched
#     so too (SPENSE_MMASP_PDL=1, the default since e2e v15: it loads its first weights before its wait,
#     and lets the next kernel launch once its weights are read)
( export TORCHINDUCTOR_ENABLE_PDL=1; stage inductor_pdl 170 0 $M --gen $GEN --variants dense,spense0.25 )
( export TORCHINDUCTOR_ENABLE_PDL=1 SPENSE_MMASP_PDL=1; stage all_pdl 170 0 $M --gen $GEN --variants spense0.25 )
#     the decode attention's two Triton kernels launched plainly (SPENSE_ATTN_PDL=0; dependent since e2e v26), dense and Spense
( export SPENSE_ATTN_PDL=0; stage attn_nopdl 170 0 $M --gen $GEN --variants dense,spense0.25 )
#     M = 1 without x fragments (SPENSE_MMASP_XFRAG_PLAN_MIN_M=2): the register kernel reads x itself
#     at B = 1 (its x ring covers x direct at NT = 1 since e2e v13) and the step loses the fragment
#     builders; compare with spense_bf16 / spense_fp8 at B = 1
( export SPENSE_MMASP_XFRAG_PLAN_MIN_M=2; stage spense_xd1 170 0 $M --gen $GEN --variants ${AB_VARIANTS:-spense0.25,spense0.25-fp8} )
#     x permuted within its 32-column chunks instead of fragments at M <= XPERM_M, default 8 (SPENSE_MMASP_XPERM=8: same
#     shape as x, so that torch.compile can write it from the kernel producing x; docs/runtime.md §12),
#     then its profile at B = 1 (are the 107 fragment builders of v12's profile gone?)
( export SPENSE_MMASP_XPERM=${XPERM_M:-8}; stage spense_xperm 170 0 $M --gen $GEN --variants ${AB_VARIANTS:-spense0.25,spense0.25-fp8}
  stage xperm_profile 90 0 $M --variants spense0.25 --batches 1 --profile --check-tokens 0 --gen 24 )
#     Spense FP8 prefilling through its e4m3 weights and the FP8 dense baseline's kernel
#     (SPENSE_FP8_PREFILL=fp8; the default unpacks to bf16 for cuBLAS): compare prefill_ms with spense_fp8
( export SPENSE_FP8_PREFILL=fp8; stage spense_fp8_prefill 90 0 $M --gen $GEN --variants spense0.25-fp8 )
#     compacted bf16 layers at M >= WGSD_M (default 17) through the sparse warpgroup MMA kernel's decode form
#     instead of the mma.sp kernel (SPENSE_WGSD_MIN_M; BATCHES=32 is where it should matter)
( export SPENSE_WGSD_MIN_M=${WGSD_M:-17}; stage spense_wgsd 170 0 $M --gen $GEN --variants spense0.25 )
#     prefill in clusters of two CTAs sharing each weight load (SPENSE_WGSP_CLUSTER=1): compare prefill_ms
#     with spense_bf16
( export SPENSE_WGSP_CLUSTER=1; stage spense_wgsp_cl2 170 0 $M --gen $GEN --variants spense0.25 )
#     Spense 50 % if time is left
stage spense50_bf16 120 0 $M --gen $GEN --variants spense0.5
echo "total $(( $(date +%s) - T0 )) s" >> "$OUT/stages.txt"
