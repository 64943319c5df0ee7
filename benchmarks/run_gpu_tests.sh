#!/usr/bin/env bash
# The GPU test suite (pytest -m gpu, 114 tests) in parts that each fit one device call: one call ran 45 of them in
# 330 s (results/wgsd_2026-12-04/t_*), the switch tests alone run a subprocess per setting.
#   PART=kernels|switches|engine [SPENSE_MMASP_SO=<so>] [LIMIT=500] [RESUME=<logs>] OUT=<dir> bash benchmarks/run_gpu_tests.sh
# kernels: every GPU test file but the two below; switches: tests/test_mmasp_switches.py; engine:
# tests/test_engine_gpu.py (compiled steps). Without SPENSE_MMASP_SO the first test that needs the extension builds
# it (~4 min). -v, so that a run cut by LIMIT still lists each test's outcome. Each run writes a new log,
# $OUT/tests_PART.txt, then tests_PART_2.txt, ...; $OUT/gpu_PART.txt collects every run's lines.
# RESUME=<earlier tests_PART*.txt, ':'-separated>: the tests that PASSED there are left out, by exact node id
# (tests/conftest.py, SPENSE_PASSED_BEFORE), so that a part cut by LIMIT goes on in the next call (2026-12-04,
# results/wgsd_2026-12-04/u_*: build 240 s, 35 kernels tests in 320 s, the other 53 in the next call).
set -u
OUT=${OUT:-out}; PART=${PART:-kernels}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
case "$PART" in
  kernels) FILES=$(ls tests/test_*.py | grep -v -e test_mmasp_switches.py -e test_engine_gpu.py);;
  switches) FILES=tests/test_mmasp_switches.py;;
  engine) FILES=tests/test_engine_gpu.py;;
  *) echo "run_gpu_tests.sh: PART must be kernels, switches or engine, not '$PART'"; exit 2;;
esac
LOG=$OUT/tests_$PART.txt; n=2
while [ -e "$LOG" ]; do LOG=$OUT/tests_${PART}_$n.txt; n=$((n + 1)); done
if [ -n "${RESUME:-}" ]; then
  IFS=: read -r -a RES <<< "$RESUME"
  for f in "${RES[@]}"; do
    [ -r "$f" ] || { echo "run_gpu_tests.sh: RESUME names $f, which is not a readable file"; exit 2; }
  done
  export SPENSE_PASSED_BEFORE=$RESUME
fi
{ echo "commit ${SPENSE_COMMIT:-unknown} part $PART start $(date -u +%FT%TZ) log $(basename "$LOG") resume ${RESUME:-none}"
  nvidia-smi -L; } >> "$OUT/gpu_$PART.txt" 2>&1
timeout "${LIMIT:-500}" python3 -m pytest -v -m gpu $FILES -p no:cacheprovider --durations=15 > "$LOG" 2>&1
echo "rc=$? end $(date -u +%FT%TZ)" >> "$OUT/gpu_$PART.txt"
cat "$OUT/gpu_$PART.txt"; tail -n 3 "$LOG"; grep -h " FAILED\| ERROR" "$LOG" | head -20
echo "this run: passed $(grep -c ' PASSED' "$LOG") failed $(grep -c ' FAILED' "$LOG")"
