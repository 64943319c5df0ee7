# as run: one call on a fresh nvidia-h100-x1 (carry .carry/cmds; the harness benchmarks/wgsp_ss_check.cu built there
# with nvcc and cuBLAS by the script), letter dl
OUT=$OUT SPENSE_COMMIT=46a9d28 LETTER=dl bash .carry/cmds/n56.sh
