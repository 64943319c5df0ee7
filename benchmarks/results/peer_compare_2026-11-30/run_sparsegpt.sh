set -x
cd /work/main
export PYTHONPATH=src
C=/work/shared/data/wikitext-2
time /tmp/peer-venv/bin/python benchmarks/peer_llmcompressor.py --model smollm2-135m --nsamples 16 --seqlen 512 --eval-windows 10 --methods dense,sparsegpt --out benchmarks/results/peer_llmcompressor_smollm2_16x512.json
for seq in true block; do
  rm -rf /tmp/ours_$seq
  time spense prune smollm2-135m --method sparsegpt --nsamples 16 --seqlen 512 --device cpu --sequential $seq --calib $C/valid.txt --out /tmp/ours_$seq --quiet
  spense eval /tmp/ours_$seq --text $C/test.txt --seqlen 512 --max-windows 10 --device cpu --json --quiet > /tmp/ours_$seq.json
done
echo done
