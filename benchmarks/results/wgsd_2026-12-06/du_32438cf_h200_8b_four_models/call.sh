# as run: the first call of the fifty-seventh stop, on a fresh H200 (asked as nvidia-h200; NVIDIA H200, 700 W; carry
# .carry/cmds); q1.sh sent an H200 to p1.sh (command.sh here) with LETTER=du, the tree at 32438cf plus the
# SPENSE_SSL_LDG128 variant of dv (ldg128.patch there: harness-only code behind a macro the extension does not define;
# the extension's PTX is that of 32438cf)
OUT=$OUT SPENSE_COMMIT=32438cf+ bash .carry/cmds/q1.sh
# q1.sh:
#   if nvidia-smi -L | grep -q H200; then LETTER=du exec bash .carry/cmds/p1.sh; else LETTER=dv exec bash .carry/cmds/q2.sh; fi
