# call 6 (eighteenth stop), on call 1's extension (carried): the 8B BF16 pair by default, again (call 5's 8B rows were
# not brought back: its $OUT held more than 8 files). Run as one command line:
mkdir -p .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext && export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so PYTHONUNBUFFERED=1 SPENSE_COMMIT=fc92c2d && mkdir -p $OUT/e2e8 && OUT=$OUT/e2e8 LAYERS=36 BATCHES=1,8 STAGE_SCALE=3 NORESERVE=1 BUDGET=92 ONLY="bw dense_bf16 spense_bf16" bash benchmarks/run_e2e.sh; grep -v skipped $OUT/e2e8/stages.txt
