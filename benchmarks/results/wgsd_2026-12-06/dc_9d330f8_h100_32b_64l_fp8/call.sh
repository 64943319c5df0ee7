# as run: one call on the H100 that da left warm (carry .carry/cmds)
OUT=$OUT SPENSE_COMMIT=9d330f8 LIM=560 H200=n46 L200=dc H100=n46 L100=dc bash .carry/cmds/go.sh
