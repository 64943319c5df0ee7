#!/usr/bin/env bash
# forty-ninth stop (any GPU; letter ce): the GPU tests of the decode kernels the FP8 and BF16 results run (stream-K
# form, FP8 dense baseline, dependent launches, the attention's operand forms, the dense streaming kernel) on today's
# tree, with what time the session's device budget leaves (LIM).
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/${LETTER:-ce}; mkdir -p $W; cp .carry/cmds/n28.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total --format=csv > $W/gpu.txt 2>&1; echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
timeout 200 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.txt 2>&1
echo "extension rc=$? at $(el) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
t=$(( ${LIM:-280} - $(el) )); [ $t -gt 30 ] && timeout $t python3 -m pytest -v -m gpu tests/test_wgsp_stream_k.py \
  tests/test_fp8.py tests/test_wgsp_pdl.py tests/test_attn_operand.py tests/test_dense.py -p no:cacheprovider > $W/pytest.txt 2>&1
echo "pytest rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; echo "passed $(grep -c ' PASSED' $W/pytest.txt) failed $(grep -c ' FAILED' $W/pytest.txt)"; tail -2 $W/pytest.txt
grep -h " FAILED\| ERROR" $W/pytest.txt | head
