OUT=$OUT SPENSE_COMMIT=c8a2549 LIM=500 H200=n38 L200=cr H100=n38 L100=cr bash .carry/cmds/go.sh   # a fresh nvidia-h100-x1, carry .carry/cmds
