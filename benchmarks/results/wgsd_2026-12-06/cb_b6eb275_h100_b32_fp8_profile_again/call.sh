OUT=$OUT SPENSE_COMMIT=b6eb275 LIM=540 H200=n18 L200=bz H100=n25 L100=cb bash .carry/cmds/go.sh   # kind nvidia-h200 asked, without needs_h200: an H100 came, so n25.sh ran again
