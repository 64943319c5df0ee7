# as run: one call on a fresh nvidia-h100-x1 (carry .carry/cmds; the tree with xr.patch applied, the harness
# .carry/cmds/wgsp_checkx.gz built from it here with nvcc 13.0 -O3, no cuBLAS): go.sh ran n54.sh (letter dj), which
# ran n53.sh (letter dk) after it
OUT=$OUT SPENSE_COMMIT=a24dd62-dirty LIM=240 H200=n54 L200=dj H100=n54 L100=dj bash .carry/cmds/go.sh
