# as run (sixty-seventh stop, 2026-12-07 15:47 UTC), asked as nvidia-h100-x1 after an ask for the nvidia-h200 kind got
# no machine; carry .carry/data (WikiText-2 valid/test) and .carry/g270 (Gemma-3-270M's converted config, as in ei).
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONPATH=src SPENSE_DATA_DIR=$PWD/.carry/data PYTHONUNBUFFERED=1; W=$OUT/el; mkdir -p $W; nvidia-smi -L > $W/gpu.txt; echo commit 46491c9 >> $W/gpu.txt; T0=$(date +%s); (python -c "from spense.runtime import mmasp; mmasp.load_extension()" > $W/build.log 2>&1; echo "ext $(( $(date +%s)-T0 ))" >> $W/times.txt) & python -c "
import torch
from transformers import AutoConfig, Gemma3ForCausalLM
c=AutoConfig.from_pretrained('.carry/g270'); torch.manual_seed(0)
m=Gemma3ForCausalLM(c).to(torch.bfloat16); m.save_pretrained('/tmp/g270')
" > $W/mk.log 2>&1; cp .carry/g270/config.json /tmp/g270/config.json; wait; echo "made $(( $(date +%s)-T0 ))" >> $W/times.txt; timeout 170 python3 -m pytest -v -m gpu tests/test_engine_gpu.py::test_mistral_sliding_fused_compiled_tokens -p no:cacheprovider > $W/mistral.txt 2>&1; echo "mistral rc=$? $(( $(date +%s)-T0 ))" >> $W/times.txt; timeout 300 python -m spense.cli bench /tmp/g270 --batch 1,8 --dense-ratio 0.25 --prompt-len 4096 --check-tokens 16 --out $W/g270 > $W/g270.log 2>&1; echo "g270 rc=$? $(( $(date +%s)-T0 ))" >> $W/times.txt
