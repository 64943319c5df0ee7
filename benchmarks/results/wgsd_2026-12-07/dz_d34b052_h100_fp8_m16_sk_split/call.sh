# as run: the first call of the sixtieth stop that got a machine (kind nvidia-h200, either card; an H100 came; carry
# .carry and .gptfast). r8.sh runs its H200 sweep on an H200 and r7.sh elsewhere; command.sh is r7.sh as it ran (its
# H100 branch: issue 9's FP8 misses at M = 16, 8B.gate_up and 32B.down at 25 % dense columns, linear_bench's dense and
# wgsd backends under SPENSE_WGSD_SK_SPLIT = -3 (the default), -1, 0, 2, 4).
SPENSE_COMMIT=d34b052 LETTER=dz LETTER2=dz bash .carry/cmds/r8.sh
