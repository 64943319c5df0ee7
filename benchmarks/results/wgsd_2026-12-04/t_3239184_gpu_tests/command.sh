#!/usr/bin/env bash
# Call D (twenty-ninth stop): the GPU test suite under 3c2e5d6's defaults on call A's build, kernel tests first,
# the compiled engine's last; -v so that a run cut by the time limit still lists each test's outcome.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
rm -rf /tmp/o; mkdir -p /tmp/o .carry/ext && tar xzf .carry/extz/ext.tgz -C .carry/ext
export SPENSE_MMASP_SO=$PWD/.carry/ext/spense_mmasp.so
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt; nvidia-smi -L >> /tmp/o/gpu.txt
K="tests/test_runtime.py tests/test_mmasp.py tests/test_mmasp_switches.py tests/test_kernels.py tests/test_fp8.py
   tests/test_wgsp.py tests/test_wgsp_stream_k.py tests/test_wgsp_pdl.py tests/test_attention.py tests/test_attn_operand.py
   tests/test_unpack.py tests/test_solver.py"
timeout ${T1:-200} python3 -m pytest -v -m gpu $K -p no:cacheprovider --durations=15 > /tmp/o/tests_kernels.txt 2>&1
echo "kernels rc=$?" >> /tmp/o/gpu.txt; tar czf $OUT/out.tgz -C /tmp/o .
timeout ${T2:-200} python3 -m pytest -v -m gpu tests/test_engine_gpu.py -p no:cacheprovider --durations=10 > /tmp/o/tests_engine.txt 2>&1
echo "engine rc=$?" >> /tmp/o/gpu.txt; tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; tail -n 4 /tmp/o/tests_kernels.txt /tmp/o/tests_engine.txt; grep -h "FAILED\|ERROR" /tmp/o/tests_*.txt | head -20
