#!/usr/bin/env bash
# fifty-eighth stop, first call. On an H200: issue 12's B = 8 misses (v70). The 8B steps at B = 8 (36 layers) with the
# torch-profiler split (dense BF16 / FP8, Spense 25 % BF16 / FP8 on the packaged H200 table); the mma.sp launch
# configs of the four 8B shapes at M = 8 swept again on today's kernels (the table's M = 8 cells are from beadfce,
# 2026-12-04); the Spense steps again on the table made from that sweep, where a cell changed.
# Elsewhere (an H100): gpt-fast's compiled decode step at B = 8 in a process of its own, beside our BF16 steps.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
H200=0; nvidia-smi -L | grep -q H200 && H200=1
if [ $H200 = 1 ]; then W=$OUT/${LETTER:-dy}; else W=$OUT/${LETTER2:-dz}; fi
mkdir -p $W; cp .carry/cmds/r1.sh $W/command.sh
[ -f /tmp/spense_mmasp.so ] || (timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
python -m spense.engine.measure --bw-only --bw $W/bw.json --device cuda > $W/log.txt 2>&1
M="python -m spense.engine.measure --model qwen3-8b --layers 36 --out $W/rows.jsonl --bw $W/bw.json --device cuda --prompt-len 512 --gen 24 --check-tokens 0"
run() {  # name, end (s since start), limit, variant, batches, extra args / env assignments (env first)...
  local n=$1 end=$2 lim=$3 v=$4 b=$5; shift 5
  local t=$(( end - $(el) )); [ $t -gt $lim ] && t=$lim; [ $t -lt 35 ] && { echo "$n skipped at $(el) s" >> $W/times.txt; return; }
  local e=() x=(); for a in "$@"; do case "$a" in *=*) e+=("$a");; *) x+=("$a");; esac; done
  echo "== $n" >> $W/log.txt; env "${e[@]}" timeout $t $M --variants $v --batches $b "${x[@]}" >> $W/log.txt 2>&1
  echo "$n rc=$? at $(el) s" >> $W/times.txt
}
waitso() { while [ ! -f /tmp/spense_mmasp.so ] && [ $(el) -lt 340 ]; do sleep 5; done; echo "extension at $(el) s" >> $W/times.txt; }
if [ $H200 = 0 ]; then
  echo "== gpt-fast B=8" >> $W/log.txt; timeout 240 python3 .carry/cmds/gptfast_decode.py 8 >> $W/log.txt 2>&1
  echo "gpt-fast B=8 rc=$? at $(el) s" >> $W/times.txt
  run "dense bf16" 420 110 dense 1,8
  waitso; export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
  run "spense bf16" 580 120 spense0.25 1,8
else
  run "dense bf16 B=8 profile" 200 110 dense 8 --profile
  run "dense fp8 B=8 profile" 230 110 dense-fp8 8 --profile
  waitso; export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
  S=8B.qkv,8B.o,8B.down,8B.gate_up; C=1x4,1x5,1x6,1x8,1x10,1x12,1x16,2x8,2x16
  timeout 50 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes bf16 --backends mmasp --cfgs $C --out /tmp/lbb > /tmp/lbb.txt 2>&1
  echo "lb bf16 M=8 rc=$? at $(el) s" >> $W/times.txt
  timeout 60 python3 benchmarks/linear_bench.py --shapes $S --ms 8 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out /tmp/lbf > /tmp/lbf.txt 2>&1
  echo "lb fp8 M=8 rc=$? at $(el) s" >> $W/times.txt
  grep -v "^check " /tmp/lbb.txt > $W/lbb.txt; grep -v "^check " /tmp/lbf.txt > $W/lbf.txt
  python3 benchmarks/make_mmasp_cfg_table.py src/spense/runtime/mmasp_cfg_h200.json /tmp/lbb.txt /tmp/lbf.txt --capability 9.0 --out $W/cfg_m8.json >> $W/times.txt 2>&1
  CH=$(python3 - $W/cfg_m8.json <<'PY'
import json, sys
new = json.load(open(sys.argv[1]))["mmasp_cfg"]; old = json.load(open("src/spense/runtime/mmasp_cfg_h200.json"))["mmasp_cfg"]
ch = [k for k in sorted(new) if new[k] != old.get(k)]
for k in ch: print("cell", k, old.get(k), "->", new[k], file=sys.stderr)
print(" ".join(sorted({k.split(",")[0] for k in ch})))
PY
  2>> $W/times.txt)
  echo "changed dtypes: '$CH'" >> $W/times.txt
  run "spense bf16 B=8 profile" 420 120 spense0.25 8 --profile
  case "$CH" in *bf16*) run "spense bf16 B=8 cfg_m8" 480 90 spense0.25 8 SPENSE_MMASP_CFG=$W/cfg_m8.json;; esac
  run "spense fp8 B=8 profile" 545 110 spense0.25-fp8 8 --profile
  case "$CH" in *fp8*) run "spense fp8 B=8 cfg_m8" 595 90 spense0.25-fp8 8 SPENSE_MMASP_CFG=$W/cfg_m8.json;; esac
fi
cat $W/times.txt; grep -E "^==|^qwen3|ms/step|profile" $W/log.txt | cut -c1-160
