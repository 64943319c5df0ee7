OUT=$OUT SPENSE_COMMIT=c327ed5 LIM=480 H200=n36 L200=cp H100=n36 L100=cp bash .carry/cmds/go.sh   # a fresh nvidia-h100-x1, carry .carry/cmds
