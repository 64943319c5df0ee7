#!/usr/bin/env bash
# next stop, call 1: the first build of the three-unit extension on the H200 (its seconds against 160-278 s as one
# unit: build.log), how its refusals reach Python now that they cross from the CUDA units into the bindings unit
# (benchmarks/ext_refusal_probe.py -> probe.txt), then the kernels part of the GPU suite (PART=kernels, ~330 s prebuilt)
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/k1; mkdir -p $W; cp .carry/cmds/k1.sh $W/command.sh
nvidia-smi --query-gpu=name,memory.total --format=csv > $W/gpu.txt 2>&1; nproc >> $W/gpu.txt
echo "commit ${SPENSE_COMMIT:-unknown}" >> $W/gpu.txt
s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/build.log; cat $W/build.log
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 90 python3 benchmarks/ext_refusal_probe.py > $W/probe.txt 2>&1; echo "probe rc=$?" >> $W/probe.txt; tail -8 $W/probe.txt
PART=kernels LIMIT=$(( 575 - $(date +%s) + T0 )) OUT=$W bash benchmarks/run_gpu_tests.sh
cd $OUT && tar czf k1.tgz k1 && rm -rf k1
