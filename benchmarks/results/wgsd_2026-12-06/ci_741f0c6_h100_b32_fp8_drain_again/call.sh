OUT=$OUT SPENSE_COMMIT=741f0c6 LIM=560 H200=n31 L200=ci H100=n31 L100=ci bash .carry/cmds/go.sh   # kind nvidia-h100-x1, the machine of cg and ch still warm
