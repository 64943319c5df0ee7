#!/usr/bin/env bash
# One device call (2026-11-24 v3sep/v3): linear bench of the separate Qwen3-8B projections (k/v, gate/up),
# regenerate auto_table.json from v2 + this run, then the e2e decode benchmark with the new table.
#   SPENSE_COMMIT=<sha> bash benchmarks/run_v3sep.sh        (results: $OUT/v3.tgz + $OUT/run.log)
# Everything is written under $W and re-tarred into $OUT after every step (a killed call keeps what it
# measured); the e2e stages get whatever time is left before T_END seconds (default 575).
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out/v3}; W=${W:-/tmp/v3w}; T_END=${T_END:-575}
mkdir -p "$OUT" "$W/lin" "$W/e2e"
TAG=_2026-11-24_v3sep
LJ=benchmarks/results/linear_bench${TAG}.json
pack() { tar czf "$OUT/v3.tgz" -C "$W" . 2>/dev/null; }
log() { echo "=== $(date +%T) t=${SECONDS}s $*"; }
log start commit ${SPENSE_COMMIT:-?}
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader
CMD="python3 benchmarks/linear_bench.py --shapes 8B.kv,8B.gate --ms 1,4,8,16 --ratios 0,0.25 --axes cols,rows \
--dtypes bf16,fp8 --backends dense,peer,cusparselt,mmasp --cols-layout blocks --out $W/lin --tag $TAG"
log linear bench: $CMD
echo "# linear_bench log: date $(date -u +%FT%T+00:00), commit ${SPENSE_COMMIT:-?}, command: $CMD" > "$W/lin/linear_bench${TAG}.log"
timeout 330 $CMD 2>&1 | grep -v "UserWarning\|return cls(" | tee -a "$W/lin/linear_bench${TAG}.log"
pack
if [ ! -s "$W/lin/linear_bench${TAG}.json" ]; then log "no linear result, stop"; exit 1; fi
cp "$W/lin/linear_bench${TAG}.json" "$LJ"
log auto table
python3 benchmarks/make_auto_table.py benchmarks/results/linear_bench_2026-11-24_v2.json "$LJ" || exit 1
cp src/spense/runtime/auto_table.json "$W/auto_table.json"
pack
for st in v3-cols-bf16 v3-cols-fp8 v3-rows-bf16 v3-rows-fp8; do
  rem=$((T_END - SECONDS))
  if [ $rem -lt 70 ]; then log "skip $st (only ${rem}s left)"; continue; fi
  [ $rem -gt 140 ] && rem=140
  MATRIX_TIMEOUT=$((rem - 5)) OUT=$W/e2e bash benchmarks/run_e2e_bench.sh $st 2>&1 | tee -a "$W/e2e/e2e_bench_2026-11-24_v3.log"
  pack
done
log done
