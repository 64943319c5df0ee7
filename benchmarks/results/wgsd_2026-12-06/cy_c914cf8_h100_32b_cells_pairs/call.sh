# as run: one call on the H100 cx left warm, carry .carry/cmds (cfg_cw.json as in cx)
OUT=$OUT SPENSE_COMMIT=c914cf8 LIM=570 H200=n44 L200=cy H100=n44 L100=cy bash .carry/cmds/go.sh
