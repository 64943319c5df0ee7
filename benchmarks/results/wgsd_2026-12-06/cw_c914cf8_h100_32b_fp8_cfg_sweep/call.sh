# as run: one call on a fresh H100 (the one cv had used went back when idle), carry .carry/cmds
OUT=$OUT SPENSE_COMMIT=c914cf8 LIM=560 H200=n42 L200=cw H100=n42 L100=cw bash .carry/cmds/go.sh
