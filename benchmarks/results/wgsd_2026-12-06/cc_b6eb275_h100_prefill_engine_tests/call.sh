OUT=$OUT SPENSE_COMMIT=b6eb275 LIM=480 H200=n26 L200=cc H100=n26 L100=cc bash .carry/cmds/go.sh   # kind nvidia-h100-x1
