"""Gemma-3-270M's shape with random bf16 weights (transformers' init, seed 0) for a device call, in a folder the
engine loads as an HF model dir: built from the carried converted config (``.carry/g270/config.json``; results
wgsd_2026-12-07/ei_*/gemma3_270m_config.json), which is then copied over the saved one as it was carried.
Kept where the folder already holds weights (a warm machine).

    python3 benchmarks/g270_weights.py [CONFIG_DIR=.carry/g270] [OUT=/tmp/g270]
"""

import shutil
import sys
from pathlib import Path


def main(cfg: str = ".carry/g270", out: str = "/tmp/g270") -> None:
    if not (Path(out) / "model.safetensors").exists():
        import torch
        from transformers import AutoConfig, Gemma3ForCausalLM

        torch.manual_seed(0)
        Gemma3ForCausalLM(AutoConfig.from_pretrained(cfg)).to(torch.bfloat16).save_pretrained(out)
    shutil.copy(Path(cfg) / "config.json", Path(out) / "config.json")


if __name__ == "__main__":
    main(*sys.argv[1:])
