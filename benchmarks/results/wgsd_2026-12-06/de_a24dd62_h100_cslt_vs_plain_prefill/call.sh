# as run: one call on a fresh nvidia-h100-x1 (asked as nvidia-h200; carry .carry/cmds): go.sh ran n52.sh (letter de).
# Its two ncu runs of the plain form profiled nothing (the kernel regex named a template form the harness's demangled
# names do not carry); df profiled them
OUT=$OUT SPENSE_COMMIT=a24dd62 H200=n51 L200=de LIM=380 H100=n52 L100=de bash .carry/cmds/go.sh
