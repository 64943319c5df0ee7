# as run: the fourth call, on du's H200 still warm (carry .carry/cmds and .gptfast): gpt-fast's compiled dense decode
# step, 8B shape, 36 layers, B = 1 and 8 (the anchor; .carry/cmds/gptfast_decode.py is a copy of
# ../shared/anchors/gptfast_decode.py, and .gptfast/model.py is pytorch-labs/gpt-fast's model.py at 32971d3, its mirror's HEAD)
mkdir -p $OUT/dx && nvidia-smi -L > $OUT/dx/gpu.txt; timeout 420 python3 .carry/cmds/gptfast_decode.py 1,8 > $OUT/dx/log.txt 2>&1; echo rc=$?; grep -v Warn $OUT/dx/log.txt | tail -5
