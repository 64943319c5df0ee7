#!/usr/bin/env bash
# One device call: where a plain-graph engine's extra held memory comes from (results wgsd_2026-12-07 es: 739 MB for
# dense, 269 MB for Spense 25 % on Gemma-3-270M's shape, against Inductor's graph trees), then the plain-graph GPU
# tests. graph_mem_probe.py runs dense under SPENSE_GRAPH plain and tree, each in a process of its own (no extension
# needed), then Spense 25 % plain once the extension is built.
#
#   SPENSE_COMMIT=<sha> LETTER=<folder> OUT=$OUT bash benchmarks/run_graph_probe.sh
#
# Needs .carry/g270/config.json carried. Writes $OUT/$LETTER/: command.sh, gpu.txt, build.log,
# probe_<variant>_<graph>.txt, test.txt, times.txt; then packs it as $LETTER.tar.gz. About 5 min.
set -u
. benchmarks/g270_setup.sh graphprobe  # environment, $W, the extension building, gpu.txt, the weights
probe() {  # variant, graph
  timeout 150 python benchmarks/graph_mem_probe.py /tmp/g270 --variant "$1" --graph "$2" \
    > "$W/probe_$1_$2.txt" 2>&1
  echo "probe $1 $2 rc=$? at $(el) s" >> "$W/times.txt"
  grep -E "MB" "$W/probe_$1_$2.txt" | grep -v Warning | head -20 | cut -c1-300
}
probe dense plain
probe dense tree
while ! grep -q "extension rc" "$W/times.txt" && [ "$(el)" -lt 330 ]; do sleep 5; done
probe spense0.25 plain
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_engine_gpu.py -k plain_graph > "$W/test.txt" 2>&1
echo "test rc=$? at $(el) s" >> "$W/times.txt"
cat "$W/times.txt"; tail -2 "$W/test.txt"
cd "$OUT" && tar czf "${LETTER:-graphprobe}.tar.gz" "${LETTER:-graphprobe}" && rm -rf "${LETTER:-graphprobe}"
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
