set -x
cd /work/main
export PYTHONPATH=src
C=/work/shared/data/wikitext-2
while pgrep -f peer_run.sh > /dev/null; do sleep 5; done
time /tmp/peer-venv/bin/python benchmarks/peer_llmcompressor.py --model smollm2-135m --nsamples 16 --seqlen 512 --eval-windows 10 --methods wanda --out /tmp/peer_wanda.json
rm -rf /tmp/ours_wanda
spense prune smollm2-135m --method wanda --nsamples 16 --seqlen 512 --device cpu --calib $C/valid.txt --out /tmp/ours_wanda --quiet
spense eval /tmp/ours_wanda --text $C/test.txt --seqlen 512 --max-windows 10 --device cpu --json --quiet > /tmp/ours_wanda.json
echo done2
