# as run: one call on a fresh nvidia-h100-x1 (carry .carry/cmds): n49.sh ran n47.sh (letter da) while the extension built,
# then n48.sh (letter db: the GPU tests; its prefill_bench skipped: the 256-token form lost in the harness)
OUT=$OUT SPENSE_COMMIT=9d330f8 H200=n49 H100=n49 bash .carry/cmds/go.sh
