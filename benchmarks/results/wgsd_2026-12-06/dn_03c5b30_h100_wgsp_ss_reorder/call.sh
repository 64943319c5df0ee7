# as run: one call on a fresh nvidia-h100-x1, a third machine (carry .carry/cmds; the harness
# benchmarks/wgsp_ss_check.cu built there with nvcc and cuBLAS by the script), letter dn. rc 1 came from the script's
# last grep: its two ncu runs profiled nothing (the regexes read "...ELi1EELb0..." where the mangled names have
# "...ELi1ELb0...", one E too many; dm's had the same fault), so ncu_*.txt hold only the harness's line
OUT=$OUT SPENSE_COMMIT=03c5b30 LETTER=dn bash .carry/cmds/n60.sh
