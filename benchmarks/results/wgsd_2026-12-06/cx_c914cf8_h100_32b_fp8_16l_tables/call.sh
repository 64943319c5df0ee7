# as run: one call on the H100 cw left warm, carry .carry/cmds (with cfg_cw.json = cw's cfg_here.json, the table
# make_mmasp_cfg_table.py made there from lbf.txt over the packaged H100 table, --dtypes fp8)
OUT=$OUT SPENSE_COMMIT=c914cf8 LIM=560 H200=n43 L200=cx H100=n43 L100=cx bash .carry/cmds/go.sh
