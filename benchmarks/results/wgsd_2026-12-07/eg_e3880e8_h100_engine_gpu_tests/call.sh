# as run: the first call of the sixty-fourth stop (kind nvidia-h200, either card; an H100 came), at e3880e8. On an H200
# it would have run the M = 8 BF16 sweep; on an H100, where that sweep was run in ea, the engine's GPU tests instead.
if nvidia-smi -L | grep -q H200; then SPENSE_COMMIT=e3880e8 LETTER=eg DENSE=1 bash benchmarks/run_m8_cfg_sweep.sh bf16; else nvidia-smi -L > $OUT/gpu_is_h100.txt; SPENSE_COMMIT=e3880e8 PART=engine LIMIT=480 OUT=$OUT/eg_h100_engine_tests bash benchmarks/run_gpu_tests.sh; tail -30 $OUT/eg_h100_engine_tests/tests_engine.txt; fi
