#!/usr/bin/env bash
# One device call: where a plain-graph engine's extra held memory comes from (results wgsd_2026-12-07 es: 739 MB for
# dense, 269 MB for Spense 25 % on Gemma-3-270M's shape, against Inductor's graph trees), then the plain-graph GPU
# tests. graph_mem_probe.py runs dense under SPENSE_GRAPH plain and tree, each in a process of its own (no extension
# needed), then Spense 25 % plain once the extension is built.
#
#   SPENSE_COMMIT=<sha> LETTER=<folder> [PROBES="dense:plain dense:tree spense0.25:plain"] OUT=$OUT \
#     bash benchmarks/run_graph_probe.sh
#
# The cause found in et: cuBLAS workspaces, one per warm-up stream (spense.runtime.timing.fresh_blas_workspaces).
# The GPU tests run are the plain-graph ones of tests/test_engine_gpu.py and tests/test_timing.py.
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
for p in ${PROBES:-dense:plain dense:tree spense0.25:plain}; do
  [ "${p%%:*}" = dense ] || while ! grep -q "extension rc" "$W/times.txt" && [ "$(el)" -lt 330 ]; do sleep 5; done
  probe "${p%%:*}" "${p#*:}"
done
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_engine_gpu.py tests/test_timing.py \
  -k "plain_graph or timing" > "$W/test.txt" 2>&1
echo "test rc=$? at $(el) s" >> "$W/times.txt"
cat "$W/times.txt"; tail -2 "$W/test.txt"
cd "$OUT" && tar czf "${LETTER:-graphprobe}.tar.gz" "${LETTER:-graphprobe}" && rm -rf "${LETTER:-graphprobe}"
