#!/usr/bin/env bash
# GPU driver of the engine's end-to-end measurement (one device call).  Usage, on the GPU machine:
#   bash benchmarks/run_e2e_bench.sh OUTDIR [MODEL] [BATCHES] [RATIOS]
# Writes OUTDIR/e2e_engine.json (rows appended as they come) and the GPU test log.
set -u
OUT=${1:-benchmarks/results}; MODEL=${2:-qwen3-8b}; BATCHES=${3:-1,8}; RATIOS=${4:-0.25}
mkdir -p "$OUT"
export PYTHONPATH=src SPENSE_CACHE=$OUT/cache
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
timeout 60 python3 -m pytest -q -x tests/test_engine_gpu.py -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
echo "gpu tests rc=$?" >> "$OUT/gpu_tests.log"
python3 - "$OUT" "$MODEL" "$BATCHES" "$RATIOS" <<'PY' 2>&1 | tee "$OUT/e2e.log"
import json, sys, warnings
warnings.simplefilter("ignore")
out, model, batches, ratios = sys.argv[1:5]
from spense.engine import measure
def sink(rows):
    json.dump(rows, open(f"{out}/e2e_engine.json", "w"), indent=1, default=str)
measure.run(model, batches=[int(b) for b in batches.split(",")], ratios=[float(r) for r in ratios.split(",")],
            prompt_len=512, gen=64, device="cuda", check_tokens=32, sink=sink,
            log=lambda m: print(m, flush=True))
PY
