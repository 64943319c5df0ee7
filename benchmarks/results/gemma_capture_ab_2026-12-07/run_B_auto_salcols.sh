#!/bin/bash
# after the SparseGPT A/B: whole linears by sensitivity (auto:0.25) and uniform salience-cols 25 %, at HEAD (gB)
while pgrep -f gemma_sgpt.sh > /dev/null; do sleep 10; done
source /tmp/cienv3/bin/activate
T=/work/shared/data/wikitext-2
d=/tmp/gB; cd $d; export PYTHONPATH=$d/src
run() { # name, prune args...
  local n=$1; shift
  python -c "import sys; from spense.cli import main; sys.argv[0] = \"spense\"; main()" prune gemma3-270m --out $d/$n --calib $T/valid.txt --nsamples 4 --seqlen 256 --device cpu "$@" > $d/${n}_prune.log 2>&1; echo "prune rc=$?" >> $d/${n}_prune.log
  python -c "import sys; from spense.cli import main; sys.argv[0] = \"spense\"; main()" eval $d/$n --text $T/test.txt --seqlen 256 --max-windows 16 --device cpu --json > $d/${n}_eval.json 2> $d/${n}_eval.err; echo "eval rc=$?" >> $d/${n}_eval.err
}
run auto25 --method sparsegpt --dense-layers auto:0.25
run salcols25 --method spense --dense-ratio 0.25 --strategy salience-cols
