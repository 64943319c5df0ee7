OUT=$OUT SPENSE_COMMIT=c327ed5 LIM=420 H200=n37 L200=cq H100=n37 L100=cq bash .carry/cmds/go.sh   # a fresh nvidia-h100-x1, carry .carry/cmds
