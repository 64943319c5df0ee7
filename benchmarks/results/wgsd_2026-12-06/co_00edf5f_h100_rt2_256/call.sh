OUT=$OUT SPENSE_COMMIT=00edf5f LIM=500 H200=n35 L200=co H100=n35 L100=co bash .carry/cmds/go.sh   # the same machine, warm (extension of cn kept), carry .carry/cmds
