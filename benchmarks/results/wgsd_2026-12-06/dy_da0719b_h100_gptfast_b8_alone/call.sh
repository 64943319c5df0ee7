# as run: the one call of the fifty-ninth stop that got a machine (kind nvidia-h200, either card; an H100 came; carry
# .carry and .gptfast). r5.sh picks r3.sh on an H200 and r1.sh elsewhere; command.sh is r1.sh as it ran (its H100 branch:
# gpt-fast's compiled dense step at B = 8 in a process of its own, then our dense BF16 and Spense 25 % BF16 steps at
# B = 1 and 8, 36 layers of the 8B shape). .carry/cmds/gptfast_decode.py is a copy of ../shared/anchors/gptfast_decode.py,
# .gptfast/model.py is pytorch-labs/gpt-fast's model.py at 32971d3.
SPENSE_COMMIT=da0719b LETTER=dy LETTER2=dy bash .carry/cmds/r5.sh
