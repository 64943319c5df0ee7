#!/usr/bin/env bash
# thirty-second stop, call 5: the engine part of the GPU suite (tests/test_engine_gpu.py: compiled steps, now with the
# plain linears through runtime.dense) on a fresh machine, the extension built by its first test that needs it
set -u
W=$OUT/ae; mkdir -p $W; cp .carry/cmds/h5.sh $W/command.sh
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext
PART=engine LIMIT=${LIMIT:-360} OUT=$W bash benchmarks/run_gpu_tests.sh
