# as run: n54.sh (dj's call.sh) ran this script after its harness runs, with LETTER=dk; cslt_probe.py here is the copy
# it ran (REPS calls a timing, 2000 by the script's default; its harness is .carry/cmds/wgsp_check256.gz, da's)
LETTER=dk bash .carry/cmds/n53.sh
