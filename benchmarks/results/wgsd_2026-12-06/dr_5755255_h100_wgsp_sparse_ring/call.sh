# as run: one call on a fresh H100 (asked as nvidia-h200; H100 80GB HBM3, 700 W; carry .carry/cmds), the tree at 5755255
# plus the comment fix of the next commit; the harness benchmarks/wgsp_ss_check.cu built there with nvcc and cuBLAS
if nvidia-smi -L | grep -q H200; then OUT=$OUT SPENSE_COMMIT=5755255+ LETTER=do bash .carry/cmds/p1.sh; else OUT=$OUT SPENSE_COMMIT=5755255+ LETTER=dr bash .carry/cmds/p4.sh; fi
