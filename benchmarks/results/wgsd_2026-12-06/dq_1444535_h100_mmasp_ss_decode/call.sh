# as run: the first half of one call on a fresh nvidia-h100-x1 (H100 80GB HBM3, power limit 700 W; carry .carry/cmds),
# the working tree at 1444535 with the SSL template options and benchmarks/mmasp_ss_check.cu as committed, except that
# the harness's xs lambda then also instantiated the NT = 1 shared-x kernel it never launches (the committed one skips
# it; the timed kernels are the same).  The folder's files did not come back (a call returns at most 8 files, and dp's
# took them): summary.txt is the script's printed summary as the call's reply gave it (the count of rc=0 runs, 40 of
# 40; memcheck's four summaries; one line per run, cut by its last grep)
if nvidia-smi -L | grep -q H200; then OUT=$OUT SPENSE_COMMIT=1444535+ LETTER=do bash .carry/cmds/p1.sh; else OUT=$OUT SPENSE_COMMIT=1444535+ LETTER=dq bash .carry/cmds/p3.sh; OUT=$OUT SPENSE_COMMIT=1444535+ LETTER=dp timeout 330 bash .carry/cmds/p2.sh; fi
