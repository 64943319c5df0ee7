# as run: one call on a fresh nvidia-h100-x1, a second machine (carry .carry/cmds; the harness
# benchmarks/wgsp_ss_check.cu built there with nvcc and cuBLAS by the script), letter dm. Its smi.csv and times.txt did
# not come back (a call returns at most 8 files); its three ncu runs profiled nothing (the regexes were matched against
# demangled names), so ncu_*.txt hold only the harness's line
OUT=$OUT SPENSE_COMMIT=d2c79a5 LETTER=dm bash .carry/cmds/n58.sh
