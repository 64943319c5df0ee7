#!/usr/bin/env bash
# sixtieth stop, last call (443 s of device time left): r9.sh without the dense step, on either GPU, each against its own packaged table ($TB).
# The mma.sp launch configs of the four 8B shapes at M = 8 in BF16 swept on today's
# kernels (the H200 table's M = 8 cells are from beadfce), and the Spense 25 % BF16 step at B = 8 on the packaged table
# and, where a cell changed, on the table made from that sweep.
TB=src/spense/runtime/mmasp_cfg_h100.json; nvidia-smi -L | grep -q H200 && TB=src/spense/runtime/mmasp_cfg_h200.json
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
W=$OUT/${LETTER:-dz}; mkdir -p $W; cp .carry/cmds/r10.sh $W/command.sh
(timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0"
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 330 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x4,1x5,1x6,1x8,1x10,1x12,1x16,2x8,2x16
timeout 60 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes bf16 --backends mmasp --cfgs $C --out /tmp/lbb > /tmp/lbb.txt 2>&1
echo "lb bf16 M=8 rc=$? at $(el) s" >> $W/times.txt
grep -v "^check " /tmp/lbb.txt > $W/lbb.txt
python3 benchmarks/make_mmasp_cfg_table.py $TB /tmp/lbb.txt --dtypes bf16 --capability 9.0 --out $W/cfg_m8.json >> $W/times.txt 2>&1
CH=$(python3 - $W/cfg_m8.json $TB <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open(sys.argv[2]))["mmasp_cfg"]
ch = [k for k in sorted(new) if new[k] != old.get(k)]
for k in ch: print("cell", k, old.get(k), "->", new[k], file=sys.stderr)
print(len(ch))
PY
2>> $W/times.txt)
echo "changed cells: '$CH'" >> $W/times.txt
echo "== spense bf16 B=8 packaged" >> $W/log.txt; timeout 100 $M --variants spense0.25 --batches 8 >> $W/log.txt 2>&1; echo "spense packaged rc=$? at $(el) s" >> $W/times.txt
if [ "${CH:-0}" != 0 ]; then
  echo "== spense bf16 B=8 cfg_m8" >> $W/log.txt; SPENSE_MMASP_CFG=$W/cfg_m8.json timeout 100 $M --variants spense0.25 --batches 8 >> $W/log.txt 2>&1; echo "spense cfg_m8 rc=$? at $(el) s" >> $W/times.txt
fi
cat $W/times.txt; grep -E "^==|^qwen3" $W/log.txt | cut -c1-160
