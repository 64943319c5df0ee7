#!/bin/bash
# Gemma-3-270M at a medium CPU protocol, HEAD's pruner (per-block calibration arguments): 16 x 512 calibration tokens
# of WikiText-2 valid, perplexity on the first 32 windows of 512 tokens of WikiText-2 test
M=/root/.cache/spense/gguf/a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
T=/work/shared/data/wikitext-2; d=/tmp/gs; export PYTHONPATH=/work/main/src
run() { # name, prune args...
  local n=$1; shift; local t0=$(date +%s)
  python3 -m spense.cli prune $M --out $d/$n --calib $T/valid.txt --nsamples 16 --seqlen 512 --device cpu "$@" > $d/${n}_prune.log 2>&1; echo "prune rc=$? $(( $(date +%s) - t0 )) s" >> $d/times.txt
  python3 -m spense.cli eval $d/$n --text $T/test.txt --seqlen 512 --max-windows 32 --device cpu --json > $d/${n}_eval.json 2> $d/${n}_eval.err; echo "$n eval rc=$? $(( $(date +%s) - t0 )) s" >> $d/times.txt
}
t0=$(date +%s); python3 -m spense.cli eval $M --text $T/test.txt --seqlen 512 --max-windows 32 --device cpu --json > $d/dense_eval.json 2> $d/dense_eval.err; echo "dense eval rc=$? $(( $(date +%s) - t0 )) s" >> $d/times.txt
run sparsegpt --method sparsegpt
run allocator25 --method spense --dense-ratio 0.25
run auto25 --method sparsegpt --dense-layers auto:0.25
run salcols25 --method spense --dense-ratio 0.25 --strategy salience-cols
