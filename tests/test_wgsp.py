"""The prefill GEMM on sparse warpgroup MMA (``spense.runtime.wgsp``): its switch, where it applies, the
fallback everywhere else, and on an sm_90 GPU (``gpu``) its output against the float64 reference."""

import pytest
import torch

from spense.errors import DeviceError
from spense.format import pack, unpack
from spense.runtime import SpenseLinear, wgsp
from test_mmasp import prefill_weight
from test_runtime import make

sm90 = pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0),
                          reason="needs an sm_90 GPU")


@pytest.fixture
def min_m(monkeypatch, request):
    """Sets SPENSE_WGSP_MIN_M for one test (the value is read once per process)."""
    def set_(v: str):
        monkeypatch.setenv("SPENSE_WGSP_MIN_M", v)
        wgsp.wgsp_min_m.cache_clear()
    request.addfinalizer(wgsp.wgsp_min_m.cache_clear)
    return set_


def test_wgsp_min_m_switch(min_m, monkeypatch):
    """65 by default (every M above the decode kernels' range); 0 turns it off; any other integer >= 0
    is the smallest M; anything else is refused in one line."""
    min_m("0")
    assert wgsp.wgsp_min_m() == 0
    monkeypatch.delenv("SPENSE_WGSP_MIN_M")
    wgsp.wgsp_min_m.cache_clear()
    assert wgsp.wgsp_min_m() == 65
    min_m("256")
    assert wgsp.wgsp_min_m() == 256
    for bad in ("-1", "many"):
        min_m(bad)
        with pytest.raises(DeviceError, match="SPENSE_WGSP_MIN_M"):
            wgsp.wgsp_min_m()


def test_wgsp_prefill_falls_back_off_the_gpu(min_m):
    """With the switch on, a layer whose input is not on an sm_90 GPU prefills as before (the unpack and
    one dense GEMM), with the reference's output; wgsp_forward itself declines without loading anything."""
    min_m("1")
    w, lay = make(256, 128, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    x = torch.randn(300, 128)
    assert wgsp.wgsp_forward(m._kw(), x) is None
    assert torch.allclose(m(x), x @ unpack(m.packed, dtype=torch.float32).T, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
def test_gpu_wgsp_prefill_matches_reference(min_m, kind):
    """A compacted bf16 layer at 25 % dense (column blocks or rows) prefills through the sparse warpgroup
    MMA kernel from SPENSE_WGSP_MIN_M tokens (ragged token tiles included), within bf16 rounding of the
    float64 reference; below it, the unpack path gives the same within rounding."""
    gen = torch.Generator().manual_seed(11)
    N, K = 1024, 4096
    w, lay = prefill_weight(kind, N, K, gen)
    p = pack(w.to("cuda", torch.bfloat16), lay)
    wref = unpack(p, dtype=torch.float32).double()
    m = SpenseLinear(p, backend="auto").compact()
    min_m("64")
    for M in (64, 200, 2048):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ wref.T
        direct = wgsp.wgsp_forward(m._kernel, x)
        assert direct is not None, (kind, M)  # the kernel applies: Qwen-like rows in eights of tiles
        e = ((direct.double() - ref).norm() / ref.norm()).item()
        assert e <= 1e-2, (kind, M, e)
        if M > 64:  # above the decode sizes the layer prefills, and through it
            y = m(x)
            assert torch.equal(y, direct), (kind, M)
    min_m("0")
    y0 = m(x)
    assert ((y0.double() - y.double()).norm() / ref.norm()).item() <= 1e-2
