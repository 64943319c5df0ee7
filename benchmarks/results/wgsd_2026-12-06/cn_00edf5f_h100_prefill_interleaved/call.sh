OUT=$OUT SPENSE_COMMIT=00edf5f LIM=$L H200=n18 L200=cp H100=n34 L100=cn bash .carry/cmds/go.sh   # kind nvidia-h100-x1 (a fresh machine), carry .carry/cmds; L=240 on an H100 (560 on an H200)
