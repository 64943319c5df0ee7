# as run: the first device call; go.sh ran n24.sh on the H100, which ran n23.sh (LIM 360; its files were lost, see
# ../bu_*) and then n22.sh (command.sh here) in the time left
OUT=$OUT SPENSE_COMMIT=1205073 LIM=560 TOTAL=585 FIRST=360 H200=n18 L200=bo H100=n24 L100=bu bash .carry/cmds/go.sh 2>&1 | tail -60
