#!/usr/bin/env bash
# forty-fourth stop, for a later one: B = 32, where SDPA alone (32.1 µs a layer) beats the fused kernel even capped
# (36.8; wgsd_2026-12-05 bc). The attention alone at B = 32 over the split kernel's launch (BLOCK, warps, stages,
# MAX_PROGRAMS, balance; the unfused kernel under the module's cap of 128) and the fused settings; then the 8B FP8 pair
# at B = 32 by default and with SPENSE_ATTN_MAX_PROGRAMS=1024 (4 splits of 160 keys: two waves of shorter programs)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bk}; mkdir -p $W; cp .carry/cmds/n12.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
timeout 150 python benchmarks/attn_bench.py --batches 32 --out $W/attn_rows.jsonl > $W/attn_log.txt 2>&1
echo "attn_bench rc=$? at $(el) s" >> $W/times.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() { echo "== $1" >> $W/log.txt; shift; env "$@" >> $W/log.txt 2>&1; echo "rc=$? at $(el) s" >> $W/times.txt; }
run "dense fp8 B=32 default" timeout 100 $M --batches 32 --variants dense-fp8
run "dense fp8 B=32 max_programs 1024" SPENSE_ATTN_MAX_PROGRAMS=1024 timeout 90 $M --batches 32 --variants dense-fp8
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 400 ]; do sleep 5; done; export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
run "spense fp8 B=32 default" timeout 90 $M --batches 32 --variants spense0.25-fp8
run "spense fp8 B=32 max_programs 1024" SPENSE_ATTN_MAX_PROGRAMS=1024 timeout 80 $M --batches 32 --variants spense0.25-fp8
cat $W/times.txt; grep -E "^B=32" $W/attn_log.txt | head -12 | cut -c1-150; grep -E "^==|^qwen3" $W/log.txt | cut -c1-120
