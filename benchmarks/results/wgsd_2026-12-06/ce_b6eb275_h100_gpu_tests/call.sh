OUT=$OUT SPENSE_COMMIT=b6eb275 LIM=270 H200=n28 L200=ce H100=n28 L100=ce bash .carry/cmds/go.sh   # kind nvidia-h100-x1, the machine of cd still warm
