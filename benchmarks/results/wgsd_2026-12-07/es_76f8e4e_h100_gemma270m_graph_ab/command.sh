#!/usr/bin/env bash
# One device call: `spense bench --repeat 3` on Gemma-3-270M's shape (random bf16 weights), B = 1, a 4,096-token
# prompt, dense and Spense 25 %, each variant in three processes in rounds; then the GPU test of setup_peak_bytes.
# The rows carry step_ms_runs, step_ms_windows_runs, dense_kinds_runs and setup_peak_bytes (docs/e2e.md v77), which
# tell whether a process's drift, a dense kind measured per process or a difference between processes is behind the
# 0.663-0.816 ms spread of results wgsd_2026-12-07 ep / eq; since er also host_ms_runs (the host's time to queue a
# step: near the step, the host sets the pace), step_sync_ms_runs and held_mem_bytes. GRAPHS="tree plain" runs the
# bench once per way of graphing the compiled step (SPENSE_GRAPH: Inductor's graph trees, or one plain CUDA graph per
# bucket, which costs the host a launch a step), into g270_<kind>.*.
#
#   SPENSE_COMMIT=<sha> LETTER=<folder> [REPEAT=3] [GEN=32] [BENCH_S=480] [GRAPHS=tree] OUT=$OUT \
#     bash benchmarks/run_g270_repeat.sh
#
# Needs .carry/g270/config.json carried (as benchmarks/run_g270_ctx_ab.sh). Writes $OUT/$LETTER/: command.sh (this
# file), gpu.txt, build.log, g270_<kind>.{json,md,png}, bench_log_<kind>.txt, summary.txt, test.txt, times.txt; then
# packs it as $LETTER.tar.gz.
set -u
. benchmarks/g270_setup.sh g270r  # environment, $W, the extension building, gpu.txt, the weights
for G in ${GRAPHS:-tree}; do
  SPENSE_GRAPH=$G timeout "${BENCH_S:-480}" python -m spense.cli bench /tmp/g270 --batch 1 --prompt-len 4096 \
    --gen "${GEN:-32}" --repeat "${REPEAT:-3}" --check-tokens 8 --out "$W" --name "g270_$G" > "$W/bench_log_$G.txt" 2>&1
  echo "bench $G rc=$? at $(el) s" >> "$W/times.txt"
  grep -E "median|^\| g270" "$W/bench_log_$G.txt" | cut -c1-200
done
python - "$W"/g270_*.json <<'PY' | tee "$W/summary.txt"
import json, sys
for r in (r for f in sys.argv[1:] for r in json.load(open(f))):
    print(r["variant"], r.get("graph"), r["batch"],
          "runs", [round(x, 3) for x in r.get("step_ms_runs") or [r["step_ms"]]],
          "thirds", [[round(x, 3) for x in w or []]
                     for w in r.get("step_ms_windows_runs") or [r.get("step_ms_windows")]],
          "host", [round(x, 3) for x in r.get("host_ms_runs") or [r.get("host_ms") or 0]],
          "sync", [round(x, 3) for x in r.get("step_sync_ms_runs") or [r["step_sync_ms"]]],
          "peak", r.get("peak_mem_bytes"), "setup", r.get("setup_peak_bytes"), "held", r.get("held_mem_bytes"),
          "measured kinds", [sorted(k for k, d in (dk or {}).items() if any(v["measured"] for v in d.values()))
                             for dk in r.get("dense_kinds_runs") or [r.get("dense_kinds")]])
PY
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_engine_gpu.py -k "setup_peak or plain_graph" \
  > "$W/test.txt" 2>&1
echo "test rc=$? at $(el) s" >> "$W/times.txt"
cat "$W/times.txt"; tail -2 "$W/test.txt"
cd "$OUT" && tar czf "${LETTER:-g270r}.tar.gz" "${LETTER:-g270r}" && rm -rf "${LETTER:-g270r}"  # a call returns 8 files
# Sourced by the Gemma-3-270M device scripts (run_g270_ctx_ab.sh, run_g270_repeat.sh), as `. benchmarks/g270_setup.sh
# <default folder>`: the environment, el (seconds since the start), the output folder W=$OUT/${LETTER:-<default>}
# with the calling script and this file in its command.sh, the mma.sp extension built in the background (its rc and time
# in times.txt; the first process, dense, does not need it), gpu.txt with the commit, and the random bf16 weights in
# /tmp/g270 (benchmarks/g270_weights.py, from the carried .carry/g270/config.json).
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
W=$OUT/${LETTER:-$1}; mkdir -p "$W"; cat "$0" "${BASH_SOURCE[0]}" > "$W/command.sh"
(timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension()" > "$W/build.log" 2>&1; \
 echo "extension rc=$? at $(el) s" >> "$W/times.txt") &
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > "$W/gpu.txt" 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> "$W/gpu.txt"
python3 benchmarks/g270_weights.py .carry/g270 /tmp/g270 > /dev/null 2>&1
