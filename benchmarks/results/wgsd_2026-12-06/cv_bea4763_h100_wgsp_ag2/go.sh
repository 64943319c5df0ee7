#!/usr/bin/env bash
# dispatcher: $H200 on an H200 (default n18), $H100 on an H100 (default n19); then everything under $OUT goes into
# one $OUT/all.tgz (a call brings back only so many files: the forty-eighth stop lost a folder to that)
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then LETTER=${L200:-bo} bash .carry/cmds/${H200:-n18}.sh
else LETTER=${L100:-bp} bash .carry/cmds/${H100:-n19}.sh; fi
tar czf /tmp/all.tgz -C "$OUT" . && rm -rf "${OUT:?}"/* && mv /tmp/all.tgz "$OUT/all.tgz"
