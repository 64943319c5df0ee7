OUT=$OUT SPENSE_COMMIT=1b1228c LIM=540 H200=n32 L200=cj H100=n32 L100=cj bash .carry/cmds/go.sh   # kind nvidia-h100-x1 (a fresh machine), carry .carry/cmds
