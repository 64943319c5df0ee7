# as run: the second half of the call of dq (same H100, same tree; carry .carry/cmds); reps.tgz held the three
# .ncu-rep files and the source page's CSV (3.7 MB, not kept): stalls.txt is its per-instruction summary, computed
# here from that CSV
if nvidia-smi -L | grep -q H200; then OUT=$OUT SPENSE_COMMIT=1444535+ LETTER=do bash .carry/cmds/p1.sh; else OUT=$OUT SPENSE_COMMIT=1444535+ LETTER=dq bash .carry/cmds/p3.sh; OUT=$OUT SPENSE_COMMIT=1444535+ LETTER=dp timeout 330 bash .carry/cmds/p2.sh; fi
