#!/usr/bin/env bash
# second session of 2026-12-04, call 1 (at 85d5aab with benchmarks/bf16_dense_probe.py written, before its --table mode,
# committed in 9a0087c): cuBLAS BF16 against the FP8 baseline's Triton kernel on bf16 weights, 90 configs, 8 shapes
export SPENSE_COMMIT=85d5aab
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
mkdir -p $OUT/probe && timeout 540 env PYTHONPATH=src python3 benchmarks/bf16_dense_probe.py --out $OUT/probe --ms 1,8,16
