#!/usr/bin/env bash
# One device call: why Spense 25 % on Gemma-3-270M's shape at B = 1 slows down with the prompt (0.682 ms a step at 512
# tokens, results wgsd_2026-12-07 ei; 0.879 at 4,096, el) where dense does not (0.750 -> 0.781). The decode step at
# B = 1 of each, at 4,096 and 512 prompt tokens, with the step's profile (kernels by op class), and Spense at 4,096
# again with each programmatic-dependent-launch switch off (SPENSE_MMASP_PDL=0, SPENSE_ATTN_PDL=0, SPENSE_PDL=0) and
# without the o projection's operand written by the attention (SPENSE_ATTN_OPERAND=0; QUICK=1: the two 4,096-token
# profiles, the first two switches and the operand's).
#
#   SPENSE_COMMIT=<sha> LETTER=<folder> [QUICK=1] OUT=$OUT bash benchmarks/run_g270_ctx_ab.sh
#
# Needs .carry/g270/config.json (Gemma-3-270M's converted config; benchmarks/results/wgsd_2026-12-07/ei_*/
# gemma3_270m_config.json) carried; random bf16 weights from it (benchmarks/g270_weights.py). Writes $OUT/$LETTER/:
# command.sh (this file, then benchmarks/g270_setup.sh), gpu.txt, build.log, bw.json, rows.jsonl, log.txt, times.txt.
set -u
. benchmarks/g270_setup.sh g270ab  # environment, $W, the extension building, gpu.txt, the weights
python -m spense.engine.measure --bw-only --bw "$W/bw.json" --device cuda > "$W/log.txt" 2>&1
M="python -m spense.engine.measure --model /tmp/g270 --out $W/rows.jsonl --bw $W/bw.json --device cuda --gen 24 \
--check-tokens 0 --batches 1"
step() {  # name, limit (s), variant, prompt length, [--profile], env assignments...
  local n=$1 lim=$2 v=$3 p=$4 prof=$5; shift 5
  echo "== $n" >> "$W/log.txt"
  env "$@" timeout "$lim" $M --variants "$v" --prompt-len "$p" $prof >> "$W/log.txt" 2>&1
  echo "$n rc=$? at $(el) s" >> "$W/times.txt"
}
step "dense p4096" 120 dense 4096 --profile
[ "${QUICK:-0}" = 1 ] || step "dense p512" 90 dense 512 ""
wait
step "spense p4096" 120 spense0.25 4096 --profile
[ "${QUICK:-0}" = 1 ] || step "spense p512" 90 spense0.25 512 --profile
step "spense p4096 SPENSE_MMASP_PDL=0" 90 spense0.25 4096 "" SPENSE_MMASP_PDL=0
step "spense p4096 SPENSE_ATTN_PDL=0" 90 spense0.25 4096 "" SPENSE_ATTN_PDL=0
step "spense p4096 SPENSE_ATTN_OPERAND=0" 90 spense0.25 4096 "" SPENSE_ATTN_OPERAND=0
[ "${QUICK:-0}" = 1 ] || step "spense p4096 SPENSE_PDL=0" 90 spense0.25 4096 "" SPENSE_PDL=0
[ "${QUICK:-0}" = 1 ] || step "dense p4096 again" 90 dense 4096 ""
cat "$W/times.txt"; grep -E "^==|B=1: step" "$W/log.txt" | cut -c1-130
