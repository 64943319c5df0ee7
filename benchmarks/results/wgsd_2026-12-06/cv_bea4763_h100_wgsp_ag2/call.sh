# as run: one call on a fresh H100, carry .carry/cmds (holding wgsp_check.gz: benchmarks/wgsp_check.cu built here at
# bea4763 with nvcc 13.0, -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc,
# no cuBLAS, then gzipped)
OUT=$OUT SPENSE_COMMIT=bea4763 LIM=280 H200=n41 L200=cv H100=n41 L100=cv bash .carry/cmds/go.sh
