"""Tests for spense.evaluate: perplexity protocol and the result table."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console

from spense.data import eval_windows, tokenize
from spense.errors import InputError, NumericalError
from spense.evaluate import perplexity, ppl_table


class ConstLogits(torch.nn.Module):
    """Returns the same logits for every position (uniform when ``logits`` is all zeros)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, ids, **kw):
        return SimpleNamespace(logits=self.logits.expand(*ids.shape, -1).clone())


@pytest.fixture
def windows(tiny_llama, tiny_text):
    _, tok = tiny_llama
    return eval_windows(tokenize(tok, tiny_text), 64, max_windows=6)


def test_perplexity_matches_manual_nll(tiny_llama, windows):
    model, _ = tiny_llama
    res = perplexity(model, windows, "cpu", progress=False)
    nll, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            logits = model(w[None]).logits[0].float()
            nll += F.cross_entropy(logits[:-1], w[1:], reduction="sum").item()
            count += w.numel() - 1
    assert res["tokens"] == count == 6 * 63
    assert res["windows"] == 6
    assert res["nll"] == pytest.approx(nll / count, rel=1e-5)
    assert res["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert res["seconds"] >= 0
    # random tiny model: perplexity is in the vicinity of the vocab size, far from 1
    assert 50 < res["perplexity"] < 5000


def test_perplexity_batch_size_invariant(tiny_llama, windows):
    model, _ = tiny_llama
    a = perplexity(model, windows, "cpu", progress=False, batch_size=1)
    b = perplexity(model, windows, "cpu", progress=False, batch_size=4)
    assert b["perplexity"] == pytest.approx(a["perplexity"], rel=1e-5)


def test_uniform_logits_give_vocab_size():
    V = 97
    model = ConstLogits(torch.zeros(V))
    w = torch.randint(0, V, (3, 16), generator=torch.Generator().manual_seed(0))
    res = perplexity(model, w, "cpu", progress=True)
    assert res["perplexity"] == pytest.approx(V, rel=1e-5)
    assert res["nll"] == pytest.approx(math.log(V), rel=1e-6)


def test_peaked_logits_give_low_perplexity():
    V = 10
    logits = torch.full((V,), -30.0)
    logits[3] = 30.0
    w = torch.full((2, 8), 3, dtype=torch.long)
    assert perplexity(ConstLogits(logits), w, "cpu", progress=False)["perplexity"] == pytest.approx(1.0)


def test_nan_raises():
    logits = torch.zeros(5)
    logits[0] = float("nan")
    with pytest.raises(NumericalError, match="NaN"):
        perplexity(ConstLogits(logits), torch.zeros(2, 4, dtype=torch.long), "cpu", progress=False)


def test_bad_windows():
    with pytest.raises(InputError):
        perplexity(ConstLogits(torch.zeros(5)), torch.zeros(4, dtype=torch.long), "cpu", progress=False)
    with pytest.raises(InputError):
        perplexity(ConstLogits(torch.zeros(5)), torch.zeros(0, 4, dtype=torch.long), "cpu", progress=False)


def test_ppl_table_renders_rows():
    rows = [
        {"method": "dense", "perplexity": 12.3456, "seconds": 1.0},
        {"method": "spense", "perplexity": 13.5, "seconds": 2.5, "dense_ratio": 0.25},
    ]
    table = ppl_table(rows)
    assert [c.header for c in table.columns] == ["method", "perplexity", "seconds", "dense_ratio"]
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "12.346" in text and "spense" in text and "0.250" in text
