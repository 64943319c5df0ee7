#!/bin/bash
# waits for the allocator A/B, then SparseGPT 2:4 on Gemma at f2c02b5 (A, block 0's args for every block) and at HEAD (B)
while pgrep -f gemma_b.sh > /dev/null; do sleep 10; done
source /tmp/cienv3/bin/activate
T=/work/shared/data/wikitext-2
for X in A B; do
  d=/tmp/g$X; cd $d; export PYTHONPATH=$d/src
  python -c "import sys; from spense.cli import main; sys.argv[0] = \"spense\"; main()" prune gemma3-270m --method sparsegpt --out $d/sgpt --calib $T/valid.txt --nsamples 4 --seqlen 256 --device cpu > $d/sgpt_prune.log 2>&1; echo "prune rc=$?" >> $d/sgpt_prune.log
  python -c "import sys; from spense.cli import main; sys.argv[0] = \"spense\"; main()" eval $d/sgpt --text $T/test.txt --seqlen 256 --max-windows 16 --device cpu --json > $d/sgpt_eval.json 2> $d/sgpt_eval.err; echo "eval rc=$?" >> $d/sgpt_eval.err
done
