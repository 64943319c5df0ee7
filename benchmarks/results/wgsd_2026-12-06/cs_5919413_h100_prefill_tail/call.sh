OUT=$OUT SPENSE_COMMIT=5919413 LIM=380 H200=n39 L200=cs H100=n39 L100=cs bash .carry/cmds/go.sh   # a fresh nvidia-h100-x1, carry .carry/cmds
