# SPENSE_COMMIT=5fba4aa LETTER=em QUICK=1 OUT=$OUT timeout 380 bash benchmarks/run_g270_ctx_ab.sh (nvidia-h200 asked; an H100 came; carry .carry/g270)
