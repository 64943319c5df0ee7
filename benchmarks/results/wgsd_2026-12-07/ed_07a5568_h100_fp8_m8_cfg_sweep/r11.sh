#!/usr/bin/env bash
# sixty-second stop: on an H200, r10.sh (its BF16 M = 8 cells, then the Spense BF16 step at B = 8); on an H100, r4h.sh
# (its FP8 M = 8 cells, dense FP8 and the Spense FP8 step at B = 8).
if nvidia-smi -L | grep -q H200; then exec bash .carry/cmds/r10.sh; else exec bash .carry/cmds/r4h.sh; fi
