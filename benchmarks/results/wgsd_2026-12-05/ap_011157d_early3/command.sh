#!/usr/bin/env bash
# thirty-sixth stop, call 1: does the reordered e4m3 prologue (EARLY = 3) help 8B.gate_up at M = 8? The default takes it
# only on grids of one wave, so 8B.gate_up (1536 CTAs) runs the CLAMP kernel; the harness of 073bcbb (wgsd_2026-12-02
# au, before CLAMP) had early3 0.9-3.5 % faster than det_h there. SPENSE_MMASP_EARLY=3 changes only that layer in the
# 8B FP8 model (its other layers take EARLY = 3 already). The 8B FP8 pair at B = 1, 8, then Spense FP8 under the switch,
# then linear_bench e4m3 on 8B.gate_up / 32B.gate_up with and without it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ap; mkdir -p $W; cp .carry/cmds/l1.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1; nproc >> $W/gpu.txt
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
s=$(date +%s); timeout 200 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log; tail -1 $W/build.log >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --batches 1,8 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 32"
timeout 150 $M --variants dense-fp8 >> $W/log.txt 2>&1; echo "dense fp8 rc=$? at $(el) s" >> $W/times.txt
timeout 150 $M --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense fp8 rc=$? at $(el) s" >> $W/times.txt
SPENSE_MMASP_EARLY=3 timeout 150 $M --variants spense0.25-fp8 >> $W/log.txt 2>&1; echo "spense fp8 EARLY=3 rc=$? at $(el) s" >> $W/times.txt
L="python3 benchmarks/linear_bench.py --shapes 8B.gate_up,32B.gate_up --ms 1,8 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs 1x4,1x6,1x8"
t=$(( 540 - $(el) )); [ $t -gt 40 ] && timeout $(( t / 2 )) $L --out $W/lb0 > $W/lb0.txt 2>&1; echo "lb default rc=$? at $(el) s" >> $W/times.txt
t=$(( 580 - $(el) )); [ $t -gt 30 ] && SPENSE_MMASP_EARLY=3 timeout $t $L --out $W/lb3 > $W/lb3.txt 2>&1; echo "lb EARLY=3 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; grep -E "^qwen3" $W/log.txt | cut -c1-300
for f in $W/lb0.txt $W/lb3.txt; do grep -E "^(8|32)B" $f | cut -c1-200; done
cd $OUT && tar czf ap.tgz ap && rm -rf ap
