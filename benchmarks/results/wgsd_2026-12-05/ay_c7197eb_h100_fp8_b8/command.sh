#!/usr/bin/env bash
# forty-second stop, call 2 (H100): Spense 25 % FP8 at B = 8 by default and with SPENSE_ATTN_MERGE_LATE=1 (ax's
# default B = 8 ran past its limit while compiling cold), then dense FP8 at B = 8 for the ratio (on an H100 it
# measures its kernels per bucket at load: slow); the extension is rebuilt only on a fresh machine
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ay; mkdir -p $W; cp .carry/cmds/n5.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1
echo "extension ready at $(el) s" >> $W/times.txt
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() {  # name, limit, end-by, args..., then env assignments after --
  local n=$1 lim=$2 end=$3; shift 3; local a=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do a+=("$1"); shift; done; shift
  t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  env "$@" timeout $t $M "${a[@]}" >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "spense fp8 default b8" 90 580 --batches 8 --variants spense0.25-fp8 -- SPENSE_ATTN_MERGE_LATE=0
run "spense fp8 merge late b8" 90 580 --batches 8 --variants spense0.25-fp8 -- SPENSE_ATTN_MERGE_LATE=1
run "dense fp8 b8" 300 580 --batches 8 --variants dense-fp8 -- SPENSE_ATTN_MERGE_LATE=0
cat $W/times.txt; grep -E "^qwen3|launch configs" $W/log.txt | cut -c1-200
