# as run: the second call, on du's H200 still warm (carry .carry/cmds); the tree at 32438cf plus ldg128.patch (here; not
# kept); STOP_AT=330 stopped nothing: all 36 cases ran in 106 s
OUT=$OUT SPENSE_COMMIT=32438cf+ STOP_AT=330 LETTER=dv bash .carry/cmds/q2.sh
