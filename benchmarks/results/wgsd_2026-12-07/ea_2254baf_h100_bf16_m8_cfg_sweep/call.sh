# as run: the fifth ask of the sixty-second stop, the first that got a machine (kind nvidia-h200, either card; an H100
# came; carry .carry and .gptfast). The working tree was 2254baf (its kernels, engine and benchmarks as at 24272ae, the
# commit the script was told: gpu.txt). command.sh is .carry/cmds/r10.sh as it ran.
SPENSE_COMMIT=24272ae LETTER=ea bash .carry/cmds/r10.sh
