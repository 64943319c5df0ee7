OUT=$OUT SPENSE_COMMIT=b6eb275 LIM=560 H200=n18 L200=bz H100=n25 L100=by bash .carry/cmds/go.sh   # carry: .carry/cmds; H100 given: n25.sh (command.sh) ran
