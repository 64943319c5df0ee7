set -u
mkdir -p .carry/bin && tar xzf .carry/binz/bins.tgz -C .carry/bin && cp .carry/bin/mmasp_bulk_check /tmp/
B="timeout 60 /tmp/mmasp_bulk_check"; R=$OUT/ab.txt
echo "# $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u +%FT%TZ), commit $SPENSE_COMMIT" > $R
echo "## correctness" >> $R
for axis in c r; do for fp8 in 0 1; do for M in 1 5 9 20; do
  $B 256 2304 0.25 $axis $fp8 $M 1 3 1 3 0 >> $R 2>&1 || echo "FAILED $axis $fp8 $M" >> $R
  $B 512 4096 0.25 $axis $fp8 $M 1 8 1 3 1 >> $R 2>&1 || echo "FAILED8 $axis $fp8 $M" >> $R
done; done; done
echo "## timing" >> $R
for shape in "6144 4096" "4096 4096" "24576 4096" "4096 12288" "10240 5120" "5120 8192" "51200 5120" "5120 25600"; do
  for M in 1 8 16; do xf=$([ $M -gt 1 ] && echo 1 || echo 0)
    for w in 8 4; do $B $shape 0.25 c 1 $M 1 $w 8 50 $xf >> $R 2>&1 || echo "FAILED $shape $M $w" >> $R; done
    [ $M -le 8 ] && { $B $shape 0.25 c 1 $M 1 8 8 50 $xf 1 >> $R 2>&1 || echo "FAILED pdl $shape $M" >> $R; }
    [ $M -le 8 ] && { $B $shape 0.25 c 0 $M 1 8 8 50 $xf >> $R 2>&1 || echo "FAILED bf16 $shape $M" >> $R; }
  done
done
echo DONE >> $R
grep -c "FAILED\|MISMATCH" $R; grep "MISMATCH" $R | head -3
