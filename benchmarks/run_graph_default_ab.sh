#!/usr/bin/env bash
# One device call: is the plain CUDA graph (SPENSE_GRAPH=plain) fit to be the engine's default?
#  1. what a plain-graph engine holds once the cuBLAS workspaces are dropped (fresh_blas_workspaces, 42dc185):
#     graph_mem_probe.py on Gemma-3-270M's shape, dense and Spense 25 % (the trees' figures and the cause: et);
#  2. the Qwen3-8B shape's step (LAYERS layers, default 12; B = 1 and 8), dense and Spense 25 %, under the trees and
#     in a plain graph, each in a process of its own, while time is left (STOP_S, default 430 s from the start);
#  3. the plain-graph GPU tests and tests/test_timing.py.
#
#   SPENSE_COMMIT=<sha> LETTER=<folder> [LAYERS=12] OUT=$OUT bash benchmarks/run_graph_default_ab.sh
#
# Needs .carry/g270/config.json carried. Writes $OUT/$LETTER/: command.sh, gpu.txt, build.log, bw.json,
# probe_<variant>_plain.txt, rows.jsonl, ab_log.txt, test.txt, times.txt; then packs it as $LETTER.tar.gz.
set -u
. benchmarks/g270_setup.sh graphab  # environment, $W, the extension building, gpu.txt, the weights
probe() {  # variant
  timeout 120 python benchmarks/graph_mem_probe.py /tmp/g270 --variant "$1" --graph plain > "$W/probe_$1_plain.txt" 2>&1
  echo "probe $1 plain rc=$? at $(el) s" >> "$W/times.txt"
  grep -E "MB" "$W/probe_$1_plain.txt" | grep -v Warning | head -8 | cut -c1-200
}
ab() {  # variant: its step under the trees, then in a plain graph
  for g in tree plain; do
    [ "$(el)" -lt "${STOP_S:-430}" ] || { echo "$1 $g skipped at $(el) s" >> "$W/times.txt"; continue; }
    echo "== $1 $g" >> "$W/ab_log.txt"
    SPENSE_GRAPH=$g timeout 110 python -m spense.engine.measure --model qwen3-8b --layers "${LAYERS:-12}" \
      --variants "$1" --batches 1,8 --prompt-len 512 --gen 24 --check-tokens 0 --bw "$W/bw.json" \
      --out "$W/rows.jsonl" --device cuda >> "$W/ab_log.txt" 2>&1
    echo "$1 $g rc=$? at $(el) s" >> "$W/times.txt"
  done
}
probe dense
python -m spense.engine.measure --bw-only --bw "$W/bw.json" --device cuda > /dev/null 2>&1
ab dense
while ! grep -q "extension rc" "$W/times.txt" && [ "$(el)" -lt 330 ]; do sleep 5; done
probe spense0.25
ab spense0.25
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_timing.py tests/test_engine_gpu.py \
  -k "timing or plain_graph" > "$W/test.txt" 2>&1
echo "test rc=$? at $(el) s" >> "$W/times.txt"
cat "$W/times.txt"; tail -2 "$W/test.txt"; grep -E "^qwen3" "$W/ab_log.txt" | cut -c1-160
cd "$OUT" && tar czf "${LETTER:-graphab}.tar.gz" "${LETTER:-graphab}" && rm -rf "${LETTER:-graphab}"
