OUT=$OUT SPENSE_COMMIT=4c02516 LIM=200 H200=n33 L200=cm H100=n33 L100=cm bash .carry/cmds/go.sh   # kind nvidia-h100-x1 (a fresh machine), carry .carry/cmds
