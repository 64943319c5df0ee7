#!/usr/bin/env bash
# One device call: the mma.sp launch configs of the four Qwen3-8B shapes at M = 8 swept on the running GPU against its
# own packaged table, and the Spense 25 % decode step at B = 8 (36 layers) on the packaged table and, where a cell
# changed, on the table made from the sweep (and, with DENSE=1, the dense step of the same dtype first; with B1AB=1
# also the dense step at B = 1, with the attention's defaults and with its settings before the forty-fourth stop,
# SPENSE_ATTN_MAXNREG=0 SPENSE_ATTN_STAGES=0, while the extension builds).
#
#   SPENSE_COMMIT=<sha> LETTER=<folder> [DENSE=1] [B1AB=1] OUT=$OUT bash benchmarks/run_m8_cfg_sweep.sh bf16|fp8
#
# Writes $OUT/$LETTER/: command.sh (this file), gpu.txt, bw.json, lb.txt (the sweep), cfg_m8.json (the table made from
# it), rows.jsonl, log.txt, times.txt. A changed cell is adopted by copying cfg_m8.json over the packaged table
# (src/spense/runtime/mmasp_cfg_{h100,h200}.json; its `command` field says how it was made). As run before as
# results/wgsd_2026-12-07/ea (bf16) and ed (fp8), from scripts that lived outside the repo.
set -u
DT=${1:?usage: run_m8_cfg_sweep.sh bf16|fp8}
case $DT in bf16) V=spense0.25; D=dense;; fp8) V=spense0.25-fp8; D=dense-fp8;; *) echo "bf16 or fp8, not $DT"; exit 2;; esac
TB=src/spense/runtime/mmasp_cfg_h100.json; nvidia-smi -L | grep -q H200 && TB=src/spense/runtime/mmasp_cfg_h200.json
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
W=$OUT/${LETTER:-m8}; mkdir -p "$W"; cp "$0" "$W/command.sh"
# the extension builds (78-102 s on 16 cores) beside the copy-bandwidth run and the dense step, which do not need it
[ -f /tmp/spense_mmasp.so ] || (timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); \
mmasp.export_extension('/tmp/spense_mmasp.so')" > "$W/build.log" 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > "$W/gpu.txt" 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}, table $TB, dtype $DT" >> "$W/gpu.txt"
python -m spense.engine.measure --bw-only --bw "$W/bw.json" --device cuda > "$W/log.txt" 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda \
--prompt-len 512 --gen 24 --check-tokens 0"
step() {  # name, limit (s), variant, batch, env assignments...
  local n=$1 lim=$2 v=$3 b=$4; shift 4
  echo "== $n" >> "$W/log.txt"; env "$@" timeout "$lim" $M --variants "$v" --batches "$b" >> "$W/log.txt" 2>&1
  echo "$n rc=$? at $(el) s" >> "$W/times.txt"
}
[ "${DENSE:-0}" = 1 ] && step "dense $DT" 150 $D 8
if [ "${B1AB:-0}" = 1 ]; then
  step "dense $DT B=1" 90 $D 1
  step "dense $DT B=1 attention before the 44th stop" 90 $D 1 SPENSE_ATTN_MAXNREG=0 SPENSE_ATTN_STAGES=0
fi
while [ ! -f /tmp/spense_mmasp.so ] && [ "$(el)" -lt 340 ]; do sleep 5; done; echo "extension at $(el) s" >> "$W/times.txt"
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x4,1x5,1x6,1x8,1x10,1x12,1x16,2x8,2x16
timeout 90 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes "$DT" \
  --backends mmasp --cfgs $C --out /tmp/lb_m8 > /tmp/lb_m8.txt 2>&1
echo "linear_bench $DT M=8 rc=$? at $(el) s" >> "$W/times.txt"
grep -v "^check " /tmp/lb_m8.txt > "$W/lb.txt"
python3 benchmarks/make_mmasp_cfg_table.py "$TB" /tmp/lb_m8.txt --dtypes "$DT" --capability 9.0 \
  --out "$W/cfg_m8.json" >> "$W/times.txt" 2>&1
CH=$(python3 - "$W/cfg_m8.json" "$TB" <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open(sys.argv[2]))["mmasp_cfg"]
ch = [k for k in sorted(new) if new[k] != old.get(k)]
for k in ch: print("cell", k, old.get(k), "->", new[k], file=sys.stderr)
print(len(ch))
PY
2>> "$W/times.txt")
echo "changed cells: '${CH:-?}'" >> "$W/times.txt"
step "spense $DT packaged" 120 $V 8
[ "${CH:-0}" != 0 ] && step "spense $DT cfg_m8" 120 $V 8 SPENSE_MMASP_CFG="$W/cfg_m8.json"
cat "$W/times.txt"; grep -E "^==|^qwen3" "$W/log.txt" | cut -c1-160
