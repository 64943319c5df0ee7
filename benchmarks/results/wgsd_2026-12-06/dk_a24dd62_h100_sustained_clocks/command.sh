#!/usr/bin/env bash
# fifty-fourth stop (any GPU; letter from $LETTER): is the sustained 2:4 prefill GEMM held by the power cap?  de's
# ncu (one launch) timed cuSPARSELt's searched kernel at 365.8 us on 8B.gate_up, M = 2048, where 20 calls in a row
# took 440.7 us each (cuBLAS 518 / 521, the harness's plain form 432 / 433 at 0 % dense).  Here each runs ~3 s in a
# row while nvidia-smi logs the SM clock and power every 100 ms: cuBLAS, cuSPARSELt default and searched (REPS
# calls a timing), then the harness (plain form and the others it times) at 0 and 25 % dense columns.
set -u
T0=$(date +%s); W=$OUT/${LETTER:-di}; mkdir -p $W; cp .carry/cmds/n53.sh .carry/cmds/cslt_probe.py $W/
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > $W/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
B=/tmp/wgsp_check; gunzip -c .carry/cmds/wgsp_check256.gz > $B && chmod +x $B
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 100 > $W/smi.csv 2>&1 &
SMI=$!
mark() { echo "$(date +%s.%N | cut -c1-14) $*" >> $W/phases.txt; }
sleep 1; mark idle
REPS=${REPS:-2000} timeout 120 python3 .carry/cmds/cslt_probe.py 24576 4096 2048 > $W/cslt.txt 2>&1; echo "cslt rc=$?" >> $W/times.txt
grep -E " (start|done) " $W/cslt.txt >> $W/phases.txt
for d in 0 0.25; do
  mark "start harness d=$d"; WGSP_NO_DECODE=1 WGSP_NO_CLUSTER=1 timeout 90 $B 24576 4096 $d c 2048 ${HREPS:-1000} >> $W/harness.txt 2>&1
  echo "harness d=$d rc=$?" >> $W/times.txt; mark "done harness d=$d"
done
sleep 1; kill $SMI
cat $W/times.txt; grep -E "^N=|^kernels" $W/cslt.txt | cut -c1-250; grep -E "^N=|^nt256" $W/harness.txt | cut -c1-250
python3 - $W <<'PY'
import datetime, statistics, sys
w = sys.argv[1]
rows = []
for line in open(f"{w}/smi.csv"):
    p = [s.strip() for s in line.split(",")]
    try:
        t = datetime.datetime.strptime(p[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
        rows.append((t, float(p[1].split()[0]), float(p[2].split()[0]), p[4]))
    except (ValueError, IndexError):
        continue
ph = [(float(l.split()[0]), " ".join(l.split()[1:])) for l in open(f"{w}/phases.txt")]
starts = {n.split(" ", 1)[1]: t for t, n in ph if n.startswith("start")}
ends = {n.split(" ", 1)[1]: t for t, n in ph if n.startswith("done")}
for k, t0 in starts.items():
    sel = [r for r in rows if t0 <= r[0] <= ends.get(k, t0)]
    if sel:
        print(f"{k}: {len(sel)} samples, SM clock median {statistics.median(r[1] for r in sel):.0f} MHz "
              f"(min {min(r[1] for r in sel):.0f}), power median {statistics.median(r[2] for r in sel):.0f} W, "
              f"throttle {sorted({r[3] for r in sel})}")
PY
