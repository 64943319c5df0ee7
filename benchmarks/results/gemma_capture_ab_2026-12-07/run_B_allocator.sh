#!/bin/bash
source /tmp/cienv3/bin/activate
cd /tmp/gB
export PYTHONPATH=/tmp/gB/src
T=/work/shared/data/wikitext-2
python -m spense.cli prune gemma3-270m --out /tmp/gB/out --calib $T/valid.txt --nsamples 4 --seqlen 256 --device cpu > /tmp/gB/prune.log 2>&1; echo "prune rc=$?" >> /tmp/gB/prune.log
python -m spense.cli eval /tmp/gB/out --text $T/test.txt --seqlen 256 --max-windows 16 --device cpu --json > /tmp/gB/eval.json 2> /tmp/gB/eval.err; echo "eval rc=$?" >> /tmp/gB/eval.err
python -m spense.cli eval gemma3-270m --text $T/test.txt --seqlen 256 --max-windows 16 --device cpu --json > /tmp/gB/dense.json 2> /tmp/gB/dense.err; echo "dense rc=$?" >> /tmp/gB/dense.err
