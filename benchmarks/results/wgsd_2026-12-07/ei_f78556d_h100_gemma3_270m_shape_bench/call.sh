# as run, on eh's machine (warm), carry .carry/g270 (config.json of the built-in gemma3-270m as converted from its GGUF
# by transformers 5.25: Gemma-3-270M's shape, 18 layers, head dim 256, sliding window 512, vocab 262,144). Random
# weights (transformers' init, seed 0), bf16. The device's git metadata was stale: the rows say e3880e8, but their
# src_digest 0bef313d6921 is that of f78556d, the tree that ran (and of cb95c34).
export TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONPATH=src; python -c "
import torch; from transformers import AutoConfig, Gemma3ForCausalLM
c = AutoConfig.from_pretrained('.carry/g270'); torch.manual_seed(0)
m = Gemma3ForCausalLM(c).to(torch.bfloat16); m.save_pretrained('/tmp/g270')" > $OUT/make.txt 2>&1; cp .carry/g270/config.json /tmp/g270/ 2>/dev/null; timeout 420 python -m spense.cli bench /tmp/g270 --batch 1,8 --dense-ratio 0.25 --check-tokens 16 --out $OUT/g270 > $OUT/bench.txt 2>&1; echo rc=$?; grep -v "^\s*$" $OUT/bench.txt | tail -14
