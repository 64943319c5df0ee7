#!/usr/bin/env bash
# forty-third stop, call 1: the fused decode attention alone (attn_bench --fused-only, B = 1, 8, 32) with the key loop's
# prefetch (SPENSE_ATTN_PREFETCH), register caps (SPENSE_ATTN_MAXNREG) and pipeline depth (SPENSE_ATTN_STAGES) and L2 prefetch; the best
# engine setting at B = 8 (written to best.env) against the default in the 8B FP8 dense step (B = 1, 8), the extension
# built beside them; then Spense 25 % FP8 with the best setting; call 2 (n10.sh, on the same machine) times Spense by
# default and with it again, and dense with it
# (written in the forty-third stop, whose device time ran out on refusals before it ran; stages added in the forty-fourth)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-bc}; mkdir -p $W; cp .carry/cmds/n9.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
timeout 240 python benchmarks/attn_bench.py --fused-only --batches 1,8,32 --out $W/attn_rows.jsonl > $W/attn_log.txt 2>&1
echo "attn_bench rc=$? at $(el) s" >> $W/times.txt
python3 - $W <<'PY' > /tmp/best.env
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/attn_rows.jsonl")]
r = min((r for r in rows if r["B"] == 8 and r["config"].startswith("spense fused") and "slot_read" in r["config"]),
        key=lambda r: r["us"])
c = r["config"]
val = lambda key: c.split(key + "=")[1].split()[0] if key + "=" in c else 0
print(f"SPENSE_ATTN_EARLY_KV={int('early_kv' in c)} SPENSE_ATTN_PREFETCH={val('prefetch')} SPENSE_ATTN_MAXNREG={val('maxnreg')} SPENSE_ATTN_STAGES={val('stages')} SPENSE_ATTN_L2_PREFETCH={int('l2_prefetch' in c)}")
PY
cp /tmp/best.env $W/best.env; B="$(cat /tmp/best.env)"; echo "best at B = 8: $B" >> $W/times.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 40 --check-tokens 0"
run() {  # name, limit, end-by, args..., then env assignments after --
  local n=$1 lim=$2 end=$3; shift 3; local a=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do a+=("$1"); shift; done; shift
  t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 40 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  echo "== $n" >> $W/log.txt; env "$@" timeout $t $M "${a[@]}" >> $W/log.txt 2>&1; echo "$n rc=$? at $(el) s" >> $W/times.txt
}
run "dense fp8 default" 130 540 --batches 1,8 --variants dense-fp8 -- SPENSE_ATTN_PREFETCH=0
run "dense fp8 best" 100 540 --batches 1,8 --variants dense-fp8 -- $B
while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 400 ]; do sleep 5; done; echo "extension ready at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
run "spense fp8 best" 150 540 --batches 1,8 --variants spense0.25-fp8 -- $B
cat $W/times.txt; grep -E "^B=(1|8|32) .*(fused|sdpa)" $W/attn_log.txt | cut -c1-150; grep -E "^==|^qwen3" $W/log.txt | cut -c1-120
