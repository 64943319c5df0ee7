# as run: one call on the H100 that dc left warm (carry .carry/cmds)
OUT=$OUT SPENSE_COMMIT=9d330f8 LIM=480 VARIANTS="spense0.25 dense" H200=n46 L200=dd H100=n46 L100=dd bash .carry/cmds/go.sh
