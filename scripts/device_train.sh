#!/usr/bin/env bash
# Device-side driver for scripts/train_default_model.py: two learning rates, keep the better
# held-out loss, return it as a tar split in 15 MB parts (the device returns files of <= 16 MB).
set -euo pipefail
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for lr in 1e-3 2e-3; do
  python3 scripts/train_default_model.py --text .carry/valid.txt --out /tmp/m_$lr --lr $lr "$@" | tee $OUT/train_$lr.log
done
best=$(python3 -c "
import json,sys
r={lr: json.load(open(f'/tmp/m_{lr}/training.json'))['best_held_out_loss'] for lr in ['1e-3','2e-3']}
print(min(r,key=r.get))")
echo "best lr: $best"
mv /tmp/m_$best /tmp/default
tar -C /tmp -cf - default | split -b 15M - $OUT/default.tar.
ls -la $OUT
