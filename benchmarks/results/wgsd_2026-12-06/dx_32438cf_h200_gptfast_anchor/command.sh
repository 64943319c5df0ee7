mkdir -p $OUT/dx && nvidia-smi -L > $OUT/dx/gpu.txt; timeout 420 python3 .carry/cmds/gptfast_decode.py 1,8 > $OUT/dx/log.txt 2>&1; echo rc=$?; grep -v Warn $OUT/dx/log.txt | tail -5
