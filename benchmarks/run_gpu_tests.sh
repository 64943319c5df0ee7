#!/usr/bin/env bash
# The GPU test suite (pytest -m gpu, 114 tests) in parts that each fit one device call: one call ran 45 of them in
# 330 s (results/wgsd_2026-12-04/t_*), the switch tests alone run a subprocess per setting.
#   PART=kernels|switches|engine [SPENSE_MMASP_SO=<so>] [LIMIT=500] OUT=<dir> bash benchmarks/run_gpu_tests.sh
# kernels: every GPU test file but the two below; switches: tests/test_mmasp_switches.py; engine:
# tests/test_engine_gpu.py (compiled steps). Without SPENSE_MMASP_SO the first test that needs the extension builds
# it (~3 min). -v, so that a run cut by LIMIT still lists each test's outcome; $OUT/tests_$PART.txt.
# RESUME=<an earlier tests_$PART.txt, or several>: the tests that PASSED there are left out (a part cut by LIMIT goes
# on in the next call; 12:39 UTC 2026-12-04: build 240 s, then 35 kernels tests in 320 s).
set -u
OUT=${OUT:-out}; PART=${PART:-kernels}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
case "$PART" in
  kernels) FILES=$(ls tests/test_*.py | grep -v -e test_mmasp_switches.py -e test_engine_gpu.py);;
  switches) FILES=tests/test_mmasp_switches.py;;
  engine) FILES=tests/test_engine_gpu.py;;
  *) echo "run_gpu_tests.sh: PART must be kernels, switches or engine, not '$PART'"; exit 2;;
esac
{ echo "commit ${SPENSE_COMMIT:-unknown} part $PART start $(date -u +%FT%TZ)"; nvidia-smi -L; } > "$OUT/gpu_$PART.txt" 2>&1
SKIP_ARGS=()
for f in ${RESUME:-}; do
  for t in $(grep " PASSED" "$f" | awk '{print $1}'); do SKIP_ARGS+=(--deselect "$t"); done
done
echo "resumed: ${#SKIP_ARGS[@]} args from ${RESUME:-none}" >> "$OUT/gpu_$PART.txt"
timeout "${LIMIT:-500}" python3 -m pytest -v -m gpu $FILES -p no:cacheprovider --durations=15 "${SKIP_ARGS[@]}" \
  > "$OUT/tests_$PART.txt" 2>&1
echo "rc=$? end $(date -u +%FT%TZ)" >> "$OUT/gpu_$PART.txt"
cat "$OUT/gpu_$PART.txt"; tail -n 3 "$OUT/tests_$PART.txt"; grep -h "FAILED\|ERROR" "$OUT/tests_$PART.txt" | head -20
echo "passed $(grep -c PASSED "$OUT/tests_$PART.txt") failed $(grep -c FAILED "$OUT/tests_$PART.txt")"
