"""The benchmark's conversions (spense.engine.sparsify) swap one layer at a time: each original linear is freed as
soon as its replacement is mounted, so converting a model needs the model plus one layer, not twice the model."""

import gc
import weakref

import torch

from spense.engine.load import random_model
from spense.engine.sparsify import block_linears, fp8_dense, sparsify

CPU = torch.device("cpu")


def _track(monkeypatch, owner, attr, originals):
    """Wraps ``owner.attr`` (called once per layer converted): each call first counts the original linears still
    alive; returns the list of those counts."""
    seen, real = [], getattr(owner, attr)

    def wrapped(*a, **k):
        gc.collect()
        seen.append(sum(r() is not None for r in originals))
        return real(*a, **k)

    monkeypatch.setattr(owner, attr, wrapped)
    return seen


def test_fp8_dense_frees_each_original_as_it_goes(monkeypatch):
    from spense.runtime.fp8 import Fp8Linear

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=1)
    originals = [weakref.ref(lin) for lin in block_linears(m).values()]
    seen = _track(monkeypatch, Fp8Linear, "from_linear", originals)
    fp8_dense(m)
    n = len(originals)
    # call i holds the original it converts and those not yet reached: n - i live; none left at the end
    assert seen == [n - i for i in range(n)]
    gc.collect()
    assert all(r() is None for r in originals)
    assert all(isinstance(mod, Fp8Linear) for mod in block_linears(m).values())


def test_sparsify_frees_each_original_as_it_goes(monkeypatch):
    import spense.engine.sparsify as sp

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=2)
    originals = [weakref.ref(lin) for lin in block_linears(m).values()]
    seen = _track(monkeypatch, sp, "pack", originals)
    sparsify(m, 0.25)
    n = len(originals)
    assert seen == [n - i for i in range(n)]
    gc.collect()
    assert all(r() is None for r in originals)
