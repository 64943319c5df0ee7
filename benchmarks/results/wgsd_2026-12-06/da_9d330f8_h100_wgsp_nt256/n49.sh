#!/usr/bin/env bash
# fifty-third stop (any GPU): n47 (the 256-token prefill form in the harness; letter da) while the extension builds,
# then n48 (its GPU tests; letter db), whose prefill_bench runs only where the harness's 256-token form beat the plain
# form by >= 2 % (geometric mean of the four M = 2048 shapes' first-round ratios); else PB=0 skips it.
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
[ -f /tmp/spense_mmasp.so ] || (timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > /tmp/build.log 2>&1 &)
LETTER=da bash .carry/cmds/n47.sh
G=$(grep -E '^nt256 .*M=2048' $OUT/da/harness.txt | head -4 | sed -E 's/.*over wgsp_ws ([0-9.]+)x.*/\1/' \
    | python3 -c "import sys, math; v=[float(l) for l in sys.stdin if l.strip()]; print(math.exp(sum(map(math.log, v))/len(v)) if v else 0)")
echo "nt256 over plain, geometric mean: $G" | tee $OUT/da/decision.txt
while [ ! -f /tmp/spense_mmasp.so ] && pgrep -f export_extension > /dev/null; do sleep 3; done
cp /tmp/build.log $OUT/da/build.txt 2>/dev/null
if python3 -c "import sys; sys.exit(0 if float('$G') >= 1.02 else 1)"; then LETTER=db bash .carry/cmds/n48.sh
else LETTER=db LIM=0 bash .carry/cmds/n48.sh; fi
