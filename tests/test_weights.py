"""spense.weights: a model folder's safetensors weights counted from their headers, and the host-memory check."""

from __future__ import annotations

import pytest
import torch

from spense import hostmem
from spense.errors import InputError
from spense.weights import check_load_fits, weight_counts


def test_counts_per_dtype_and_a_home_relative_path(tiny_llama_dir, monkeypatch):
    from safetensors import safe_open

    want: dict[str, int] = {}
    with safe_open(str(tiny_llama_dir / "model.safetensors"), framework="pt") as f:
        for k in f.keys():  # noqa: SIM118
            t = f.get_tensor(k)
            name = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}[t.dtype]
            want[name] = want.get(name, 0) + t.numel()
    assert weight_counts(tiny_llama_dir) == want
    monkeypatch.setenv("HOME", str(tiny_llama_dir.parent))
    assert weight_counts(f"~/{tiny_llama_dir.name}") == want  # `--out=~/x` reaches here unexpanded


def test_check_load_fits_counts_floating_weights_in_the_dtype_asked(tiny_llama_dir, monkeypatch):
    n = sum(weight_counts(tiny_llama_dir).values())
    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: 2 * n)
    check_load_fits(tiny_llama_dir, torch.bfloat16)
    with pytest.raises(InputError, match=r"loading .* in float32 \(0\.00 B weights\) needs"):
        check_load_fits(tiny_llama_dir, torch.float32)
