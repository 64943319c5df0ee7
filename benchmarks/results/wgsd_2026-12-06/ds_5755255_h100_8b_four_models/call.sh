# as run: one call on dr's H100 still warm (asked as nvidia-h200; H100 80GB HBM3, 700 W; carry .carry/cmds), the tree
# at 5755255 plus the comment fix of the next commit (the extension's kernels: the same PTX as 1444535's but for the
# register kernels' mangled names)
OUT=$OUT SPENSE_COMMIT=5755255+ LETTER=ds bash .carry/cmds/p1.sh
