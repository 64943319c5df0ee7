# one call: the extension at HEAD (background build); meanwhile the harness's clamp columns (EARLY & 16) on the eight
# shapes and gpt-fast's compiled dense step (B = 1); then the 8B BF16 pair end to end on that build
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv > $OUT/gpu.txt 2>&1
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" >> $OUT/gpu.txt
mkdir -p /tmp/f
( PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 420 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/build_f.txt 2>&1; echo "build_f rc=$? $(( $(date +%s)-S )) s" >> /tmp/build_f.txt ) &
P1=$!
tar xzf .carry/hb/hb.tgz -C /tmp
R=$OUT/harness.txt
echo "# harness clamp columns, ${SPENSE_COMMIT:-HEAD}; $(date -u +%FT%TZ); args N K 0.25 c FP8 M RT W 8 30 xf" > $R
for shape in "6144 4096" "4096 4096" "24576 4096" "4096 12288" "10240 5120" "5120 8192" "51200 5120" "5120 25600"; do
  for fp8 in 0 1; do for M in 1 8 16; do xf=$([ $M -gt 1 ] && echo 1 || echo 0)
    for w in 8 4; do timeout 60 /tmp/hb/mmasp_bulk_check $shape 0.25 c $fp8 $M 1 $w 8 30 $xf >> $R 2>&1 || echo "FAILED $shape $fp8 $M $w" >> $R; done
  done; done
  timeout 60 /tmp/hb/mmasp_bulk_check $shape 0.25 c 1 16 2 8 8 30 1 >> $R 2>&1 || echo "FAILED rt2 $shape" >> $R
done
echo "## second pass, e4m3 M = 16" >> $R
for shape in "6144 4096" "4096 4096" "24576 4096" "4096 12288" "10240 5120" "5120 8192" "51200 5120" "5120 25600"; do
  for rt in 1 2; do timeout 60 /tmp/hb/mmasp_bulk_check $shape 0.25 c 1 16 $rt 8 8 30 1 >> $R 2>&1 || echo "FAILED p2 $shape $rt" >> $R; done
done
echo "harness done at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
timeout 240 python3 .gptfast/gptfast_decode.py 1 > $OUT/anchor.txt 2>&1; echo "anchor rc=$? at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
wait $P1
tail -3 /tmp/build_f.txt > $OUT/build.txt
echo "build done at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
[ -f /tmp/f/spense_mmasp.so ] && tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
mkdir -p $OUT/e2e
OUT=$OUT/e2e SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - ($(date +%s)-S) )) ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh
echo "end at $(( $(date +%s)-S )) s" >> $OUT/gpu.txt
tar czf $OUT/e2e.tgz -C $OUT e2e && rm -rf $OUT/e2e
