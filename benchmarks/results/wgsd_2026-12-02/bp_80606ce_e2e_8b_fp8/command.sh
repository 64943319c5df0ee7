# one call, on the extension built in t1 (carried): the 8B FP8 pair end to end (36 layers, B = 1, 8), Spense FP8 by
# default, with the candidate launch-config table (SPENSE_MMASP_CFG) and with SPENSE_MMASP_CLAMP=0, in one run
set -u
export PYTHONUNBUFFERED=1
S=$(date +%s)
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
mkdir -p $OUT/e2e
OUT=$OUT/e2e LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=$(( 585 - ($(date +%s)-S) )) ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8 ab2_spense_fp8" \
  AB_SPFP8_ENV="SPENSE_MMASP_CFG=benchmarks/results/wgsd_2026-12-02/bm_926b4a7_clamp_linear/mmasp_cfg_h200_candidate.json" \
  AB2_SPFP8_ENV="SPENSE_MMASP_CLAMP=0" bash benchmarks/run_e2e.sh
echo "end at $(( $(date +%s)-S )) s" >> $OUT/e2e/gpu.txt
cat $OUT/e2e/stages.txt | grep -v skipped
