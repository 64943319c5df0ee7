set -x
cd /work/main
C=/work/shared/data/wikitext-2
S="--nsamples 4 --seqlen 256 --device cpu --calib $C/valid.txt --quiet"
for v in "alloc25:--method spense --dense-ratio 0.25 --budget-alloc greedy" "first7:--method sparsegpt --dense-layers 0-6" "auto25:--method sparsegpt --dense-layers auto:0.25"; do
  name=${v%%:*}; args=${v#*:}
  rm -rf /tmp/cpu_$name
  /usr/bin/time -f "%e s" spense prune smollm2-135m $args $S --out /tmp/cpu_$name
  spense eval /tmp/cpu_$name --text $C/test.txt --seqlen 256 --max-windows 16 --device cpu --json --quiet > /tmp/cpu_$name.json
done
echo done
