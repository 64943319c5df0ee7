#!/usr/bin/env bash
# fiftieth stop (any GPU; letter cm): why the prefill kernel on 32B.gate_up at M = 2048 took 1.17 ms in the harness
# and 1.27-1.40 ms in prefill_bench (v62). SM clock and power logged every 100 ms throughout (clocks.csv, with the
# phases' times in times.txt); prefill_diag.py (eager as the harness times, graphs of 4 and of 20 calls as
# prefill_bench does, one process, cuBLAS beside). The harness itself stays home: its binary would take the call
# past the carry limit. LIM caps the run (default 230 s).
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-cm}; mkdir -p $W; cp .carry/cmds/n33.sh $W/command.sh; cp .carry/cmds/prefill_diag.py $W/
el() { echo "$(( $(date +%s) - T0 )) s (epoch $(date +%s))"; }
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 100 > $W/clocks.csv 2>&1 &
CL=$!
nvidia-smi --query-gpu=timestamp,clocks_event_reasons.active --format=csv -lms 100 > $W/reasons.csv 2>&1 &
CR=$!
[ -f /tmp/spense_mmasp.so ] || (timeout 200 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
while [ ! -f /tmp/spense_mmasp.so ] && [ $(( $(date +%s) - T0 )) -lt 200 ]; do sleep 3; done
echo "extension $(el)" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( ${LIM:-230} - $(date +%s) + T0 - 15 )); [ $t -gt 20 ] && timeout $t python3 .carry/cmds/prefill_diag.py > $W/diag.txt 2>&1
echo "diag rc=$? done $(el)" >> $W/times.txt
kill $CL $CR
cat $W/times.txt
grep -E "round|Error|error" $W/diag.txt | cut -c1-200
