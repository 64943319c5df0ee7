#!/usr/bin/env bash
# forty-seventh stop: n23 (M = 16 per layer, letter bu) within 360 s, then n22 (the prefill profile, letter bt) in what is left
T0=$(date +%s)
LIM=${FIRST:-360} LETTER=bu bash .carry/cmds/n23.sh
LIM=$(( ${TOTAL:-585} - ($(date +%s) - T0) )) LETTER=bt bash .carry/cmds/n22.sh
