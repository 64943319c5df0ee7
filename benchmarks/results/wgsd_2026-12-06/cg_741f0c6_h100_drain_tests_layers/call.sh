OUT=$OUT SPENSE_COMMIT=741f0c6 LIM=560 H200=n30 L200=cg H100=n30 L100=cg bash .carry/cmds/go.sh   # kind nvidia-h100-x1 (a fresh machine), carry .carry/cmds
