"""InputPlan (spense.runtime.linear_plan): which decode buckets ``plan`` gives x_perm or fragments, and the
``(perm, f16, only)`` that ``forward`` and the attention's operand form read, on a stand-in layer (CPU; the
decisions only, no kernel runs)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from spense.runtime import mmasp, xops
from spense.runtime.linear_plan import InputPlan

SWITCHES = (xops.x_perm_max_m, xops.xfrag_plan_min_m, xops.f16_x, xops.operand_only, mmasp.default_stages)
ENV = ("SPENSE_MMASP_XPERM", "SPENSE_MMASP_XFRAG_PLAN_MIN_M", "SPENSE_MMASP_F16", "SPENSE_OPERAND_ONLY",
       "SPENSE_MMASP_STAGES")


@pytest.fixture(autouse=True)
def default_switches(monkeypatch, request):
    """Every switch the plan reads at its default, read afresh (and forgotten again after the test)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    for fn in SWITCHES:
        fn.cache_clear()
        request.addfinalizer(fn.cache_clear)


class Layer(InputPlan):
    """What InputPlan reads of a SpenseLinear: the weight's device and dtype, FP8 scales, the backend, auto's
    choice per M, whether the warpgroup kernel serves M, and the kernel layout's column gather."""

    def __init__(self, K=128, device="cuda", fp8=False, backend="auto", choice="mmasp", wgsd=(), gather=None,
                 fused=False):
        self.values = SimpleNamespace(device=torch.device(device), dtype=torch.bfloat16)
        self.scale = torch.ones(1) if fp8 else None
        self._kernel, self._fused, self.backend, self.in_features = None, fused, backend, K
        self.mmasp_cfg, self.choice, self._xperm = {}, {}, None
        self._choose, self._wgsd, self._gather = choice, set(wgsd), gather

    def _auto_choice(self, M):
        self.choice[M] = self._choose
        return self._choose

    def _wgsd_serves(self, M):
        return M in self._wgsd

    def _kw(self):
        return SimpleNamespace(xperm=self._gather)


def buckets(layer):
    return sorted(layer._perm_buckets), sorted(layer._frag_buckets)


def test_plan_gives_m1_x_perm_and_the_other_decode_buckets_fragments():
    layer = Layer().plan((1, 2, 5, 16, 64, 128, 2048))
    assert buckets(layer) == ([1], [2, 8, 16, 64])  # M = 5's bucket is 8; prefill sizes are not planned


@pytest.mark.parametrize("why", ["gather", "K", "rt2", "xperm_off"])
def test_m1_takes_fragments_where_x_perm_cannot_serve(why, monkeypatch):
    layer = Layer(K=96 if why == "K" else 128, gather=torch.arange(4) if why == "gather" else None)
    if why == "rt2":
        layer.mmasp_cfg = {1: (2, None)}
    if why == "xperm_off":
        monkeypatch.setenv("SPENSE_MMASP_XPERM", "0")
    layer.plan((1, 8))
    assert buckets(layer) == ([], [1, 8])
    if why == "gather":
        assert layer._xperm is layer._gather  # the fragments gather x's columns as the kernel layout does


@pytest.mark.parametrize("kw", [dict(device="cpu"), dict(fused=True), dict(backend="triton"),
                                dict(choice="dense"), dict(wgsd=(1, 8))])
def test_nothing_is_planned_where_the_mma_sp_kernel_does_not_run(kw):
    assert buckets(Layer(**kw).plan((1, 8))) == ([], [])


def test_fragments_false_and_the_min_m_switch(monkeypatch):
    assert buckets(Layer().plan((1, 8), fragments=False)) == ([], [])
    monkeypatch.setenv("SPENSE_MMASP_XFRAG_PLAN_MIN_M", "2")
    assert buckets(Layer().plan((1, 2, 8))) == ([], [2, 8])


def test_input_plan_bf16_and_fp8():
    bf = Layer().plan((1, 8, 32))
    assert bf.input_plan(1, cuda=True) == (True, False, False)  # bf16 x_perm is x itself: x is read
    assert bf.input_plan(8, cuda=True) == (False, False, True)  # fragments: x read for its shape alone
    assert bf.input_plan(8, cuda=False) == (False, False, False)
    assert bf.input_plan(4, cuda=True) == (False, False, False)  # bucket 4 was not planned
    f8 = Layer(fp8=True).plan((1, 8, 32))
    assert f8.input_plan(1, cuda=True) == (True, True, True)  # x_perm of x's f16 operand
    assert f8.input_plan(8, cuda=True) == (False, True, True)
    assert f8.input_plan(32, cuda=True) == (False, False, True)  # f16 only up to F16_MAX_M
    assert xops.F16_MAX_M < 32


def test_operand_only_switch_and_auto_choosing_another_kernel(monkeypatch):
    layer = Layer(fp8=True).plan((1, 8))
    layer.choice[8] = "triton"  # auto took another kernel at 8 after all: the op reads x
    assert layer.input_plan(8, cuda=True) == (False, True, False)
    monkeypatch.setenv("SPENSE_OPERAND_ONLY", "0")
    xops.operand_only.cache_clear()
    assert Layer(fp8=True).plan((1,)).input_plan(1, cuda=True) == (True, True, False)
