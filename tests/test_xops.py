"""The mma.sp kernel's x operands (``spense.runtime.xops``): x_perm and the fragments, x's f16 operand, the
switches that say when the engine builds each, and where ``SpenseLinear.forward`` hands them to the kernel."""

import pytest
import torch

from spense.format import pack
from spense.runtime import SpenseLinear
from test_runtime import make


@pytest.mark.parametrize("value,expect", [(None, 1), ("2", 2), ("65", 65), ("0", None), ("x", None)])
def test_xfrag_plan_min_m_switch(monkeypatch, value, expect):
    """``SPENSE_MMASP_XFRAG_PLAN_MIN_M``: unset = 1 (fragments at every planned M), else 1..65; anything
    else is refused with the variable's name."""
    from spense.errors import DeviceError
    from spense.runtime.xops import xfrag_plan_min_m

    if value is None:
        monkeypatch.delenv("SPENSE_MMASP_XFRAG_PLAN_MIN_M", raising=False)
    else:
        monkeypatch.setenv("SPENSE_MMASP_XFRAG_PLAN_MIN_M", value)
    xfrag_plan_min_m.cache_clear()
    try:
        if expect is None:
            with pytest.raises(DeviceError, match="SPENSE_MMASP_XFRAG_PLAN_MIN_M"):
                xfrag_plan_min_m()
        else:
            assert xfrag_plan_min_m() == expect
    finally:
        xfrag_plan_min_m.cache_clear()


def test_read_once_keeps_the_value_and_compiles_without_warning(monkeypatch):
    """``read_once``: a switch read at the first call and kept until ``cache_clear`` (a refusal is not kept);
    torch.compile traces a call of one inside a step in one graph, reads the kept value rather than the
    environment of the moment, and gives no warning of an lru_cache wrapper (every run of ``spense bench`` printed
    two of them)."""
    import warnings

    from spense.errors import DeviceError
    from spense.runtime.xops import _env_int, read_once

    @read_once
    def knob() -> int:
        return _env_int("SPENSE_TEST_READ_ONCE", 3, 1, 9)

    monkeypatch.setenv("SPENSE_TEST_READ_ONCE", "x")
    with pytest.raises(DeviceError, match="SPENSE_TEST_READ_ONCE"):
        knob()
    monkeypatch.setenv("SPENSE_TEST_READ_ONCE", "5")
    assert knob() == 5 and knob.__name__ == "knob"
    monkeypatch.setenv("SPENSE_TEST_READ_ONCE", "7")
    assert knob() == 5  # kept
    torch._dynamo.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex = torch._dynamo.explain(lambda t: t * knob())(torch.ones(3))
        y = torch.compile(lambda t: t * knob(), backend="eager", fullgraph=True)(torch.ones(3))
    assert ex.graph_count == 1 and ex.graph_break_count == 0, ex.break_reasons
    assert torch.equal(y, torch.full((3,), 5.0))
    assert not [w for w in caught if "lru_cache" in str(w.message)], [str(w.message)[:120] for w in caught]
    knob.cache_clear()
    assert knob() == 7


def test_f16_x_switch_and_where_forward_builds_the_operand(monkeypatch):
    """SPENSE_MMASP_F16 (1 by default, 0 or 1, else refused in one line): with it an FP8 layer's forward builds
    the mma.sp kernel's x_perm or fragments from x's f16 operand at planned M <= 16 (plain tensor ops, fused
    upstream when compiled), hands x_perm of it beside x itself, and the op runs the kernel on it with
    ``xh``; a bf16 layer, M past 16 or the switch off keep bf16.  (Routing only, on the CPU: the kernel is a
    stand-in.)"""
    from spense.errors import DeviceError
    from spense.runtime import linear as lin
    from spense.runtime import xops as mm

    def switch(v):
        if v is None:
            monkeypatch.delenv("SPENSE_MMASP_F16", raising=False)
        else:
            monkeypatch.setenv("SPENSE_MMASP_F16", v)
        mm.f16_x.cache_clear()

    switch(None)
    assert mm.f16_x() is True
    switch("2")
    with pytest.raises(DeviceError, match="SPENSE_MMASP_F16"):
        mm.f16_x()
    switch("1")
    try:
        w, lay = make(64, 128, "cols", 0.25)
        f8, b16 = SpenseLinear(pack(w, lay, fp8=True), backend="mmasp"), SpenseLinear(pack(w, lay), backend="mmasp")
        x5 = torch.randn(5, 128).to(torch.bfloat16)
        for m in (f8, b16):
            m._frag_buckets, m._xperm = {8, 32}, None
        xf = f8._fragments(x5)
        assert xf.dtype == torch.float16 and torch.equal(xf, mm.x_fragments(mm.f16_operand(x5)))
        assert torch.equal(b16._fragments(x5), mm.x_fragments(x5))
        assert f8._fragments(torch.randn(20, 128).to(torch.bfloat16)).dtype == torch.bfloat16  # past M = 16
        seen = []
        monkeypatch.setattr(lin, "_check_device", lambda dev, backend: True)
        for m in (f8, b16):
            m._perm_buckets = {1}
            monkeypatch.setattr(m, "forward_mmasp", lambda x2, out=None, xf=None, xperm=False, xh=False:
                                seen.append((x2, xperm, xh)) or torch.zeros(x2.shape[0], 64, dtype=torch.bfloat16))
        x1 = torch.randn(1, 128).to(torch.bfloat16)
        assert f8(x1).dtype == torch.bfloat16 and b16(x1).dtype == torch.bfloat16
        (a, ap, ah), (b, bp, bh) = seen
        assert ap and ah and a.dtype == torch.float16 and torch.equal(a, mm.x_perm(mm.f16_operand(x1)))
        assert bp and not bh and torch.equal(b, mm.x_perm(x1))
        switch("0")
        seen.clear()
        f8(x1)
        assert seen[0][1] and not seen[0][2] and torch.equal(seen[0][0], mm.x_perm(x1))
    finally:
        switch(None)


def test_x_perm_equation_inverse_and_fragments():
    """x_perm[m, 32c + 8t + 2i + e] = x[m, 32c + 8i + 2t + e]; it is its own inverse; and the 16 bytes of
    lane (g, t) at column 32c + 8t of token g are that lane's fragment in x_fragments (M <= 8)."""
    from spense.errors import InputError
    from spense.runtime.xops import x_fragments, x_perm

    M, K = 5, 128
    x = torch.randn(M, K).to(torch.bfloat16)
    xp = x_perm(x)
    assert xp.shape == x.shape
    for c, t, i, e in ((0, 0, 0, 0), (1, 3, 2, 1), (3, 1, 3, 0), (2, 2, 1, 1)):
        assert torch.equal(xp[:, 32 * c + 8 * t + 2 * i + e], x[:, 32 * c + 8 * i + 2 * t + e])
    assert torch.equal(x_perm(xp), x)
    xf = x_fragments(x)  # (K/32, NT = 1, 8 tokens g, 4 t, 4 i, 2 e)
    for g in range(M):
        for c in range(K // 32):
            for t in range(4):
                assert torch.equal(xp[g, 32 * c + 8 * t: 32 * c + 8 * t + 8], xf[c, 0, g, t].reshape(8))
    with pytest.raises(InputError):
        x_perm(torch.zeros(2, 96))
