"""Swap the pruned ``nn.Linear`` layers of a model loaded from a Spense checkpoint for :class:`SpenseLinear`."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from spense.errors import FormatError, InputError
from spense.format import SpenseLayout, pack
from spense.runtime.linear import SpenseLinear


def convert(model: nn.Module, manifest_or_dir, backend: str = "auto", fp8: bool = False) -> nn.Module:
    """Swap every pruned ``nn.Linear`` of a loaded Spense checkpoint for a :class:`SpenseLinear`.

    ``manifest_or_dir``: the ``spense.json`` dict, or the checkpoint directory.  Weights of the model
    (dense-with-zeros) are packed; GPT-2 ``Conv1D`` (``transposed``) weights are transposed first.
    """
    if isinstance(manifest_or_dir, dict):
        m = manifest_or_dir
    else:
        m = json.loads((Path(manifest_or_dir) / "spense.json").read_text())
    mods = dict(model.named_modules())
    n = 0
    for name, rec in m.get("layers", {}).items():
        if name not in mods:
            raise InputError(f"convert: layer {name!r} of the manifest is not in the model")
        mod = mods[name]
        if isinstance(mod, SpenseLinear):
            continue
        lay = SpenseLayout.from_dict(rec["layout"])
        w = mod.weight.detach()
        if rec.get("transposed", False):
            w = w.t()
        if tuple(w.shape) != lay.shape:
            raise FormatError(f"convert: {name} weight {tuple(w.shape)} != layout {lay.shape}")
        p = pack(w.contiguous(), lay, fp8=fp8)
        new = SpenseLinear(p, getattr(mod, "bias", None), backend=backend, name=name)
        parent_name, _, child = name.rpartition(".")
        parent = mods[parent_name] if parent_name else model
        setattr(parent, child, new)
        n += 1
    model.spense_converted = n
    return model
