"""spense.runtime.unpack: the Triton unpack of the mma.sp kernel layout equals the tensor-op reference
(``mmasp.unpack_kernel_layout``) bit for bit, under TRITON_INTERPRET=1 (CPU subprocess) and on the GPU
(``gpu``, with ``unpack_weight``'s once-per-kind check), for every layout kind: columns gathered or in
whole 64-blocks (a short last block), rows, no dense region, bf16 and e4m3; for e4m3 layouts also the
unscaled e4m3 unpack (the FP8 prefill's weight)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

SRC = os.path.join(os.path.dirname(__file__), "..", "src")

_CHECK = textwrap.dedent("""
    import torch
    from spense.format import SpenseLayout, pack
    from spense.runtime.mmasp import to_kernel_layout, unpack_kernel_layout
    from spense.runtime.unpack import unpack_kernel_layout_triton

    def w24(N, K, gen):
        w = torch.randn(N, K, generator=gen)
        keep = torch.rand(N, K // 4, 4, generator=gen).argsort(-1).argsort(-1) < 2
        return (w.reshape(N, -1, 4) * keep).reshape(N, K)

    def packed(N, K, axis, idx, fp8, seed):
        gen = torch.Generator().manual_seed(seed)
        lay = SpenseLayout((N, K), axis, torch.tensor(idx, dtype=torch.long), block=64 if axis == "cols" else 16)
        sp, dn = lay.split(torch.randn(N, K, generator=gen))
        return pack(lay.merge(w24(*sp.shape, gen), dn), lay, fp8=fp8)

    gen = torch.Generator().manual_seed(0)
    cases = {
        "cols gathered": (40, 192, "cols", sorted(torch.randperm(192, generator=gen)[:64].tolist())),
        "cols blocks, short last": (40, 200, "cols", list(range(64, 128))),
        "cols, no dense": (24, 128, "cols", []),
        "rows": (72, 160, "rows", list(range(16, 32)) + list(range(48, 64))),
    }
    dev = DEVICE
    for name, (N, K, axis, idx) in cases.items():
        for fp8 in (False, True):
            kw = to_kernel_layout(packed(N, K, axis, idx, fp8, len(name)), dev)
            lay = packed(N, K, axis, idx, fp8, len(name)).layout
            ref = unpack_kernel_layout(kw, lay, torch.bfloat16)
            got = unpack_kernel_layout_triton(kw, lay, torch.bfloat16)
            assert torch.equal(got, ref), (name, fp8, (got.float() - ref.float()).abs().max().item())
            if fp8:  # the e4m3 weights themselves: scaled by the row scales they give the same bf16 W
                raw = unpack_kernel_layout_triton(kw, lay, torch.float8_e4m3fn)
                assert raw.dtype == torch.float8_e4m3fn and raw.shape == ref.shape
                assert torch.equal((raw.float() * kw.wscale[:, None]).to(torch.bfloat16), ref), name
            print("OK", name, fp8, "gathered" if kw.xperm is not None else "blocks")
            if dev == "cuda":  # the engine's entry: checked once per kind, then the Triton path
                from spense.runtime import unpack as U
                from spense.runtime.mmasp import layout_indices
                li = layout_indices(lay, dev)
                assert torch.equal(U.unpack_weight(kw, lay, li, check=True), ref)
                assert U._OK[(fp8, lay.axis, kw.xperm is not None)] is True
                assert torch.equal(U.unpack_weight(kw, lay, li), ref)
""")


def _run(device: str, interpret: bool) -> str:
    env = dict(os.environ, PYTHONPATH=SRC)
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    r = subprocess.run([sys.executable, "-c", _CHECK.replace("DEVICE", repr(device))], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_triton_unpack_matches_reference_interpreted():
    pytest.importorskip("triton")
    out = _run("cpu", interpret=True)
    assert out.count("OK") == 8
    assert "OK cols gathered False gathered" in out and "OK cols blocks, short last True blocks" in out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_triton_unpack_matches_reference():
    assert _run("cuda", interpret=False).count("OK") == 8


def test_triton_checked_marks_each_layout_kind_once(monkeypatch):
    """The once-per-kind guard behind unpack_weight and unpack_weight_e4m3: a launch failure or a failed
    check is warned, returns None and keeps that kind off; a passed check is not repeated."""
    import warnings

    from spense.runtime import unpack as U

    calls = []

    def fake(kw, layout, dtype):
        calls.append(kw)
        if kw == "broken":
            raise RuntimeError("no launch")
        return torch.ones(2)

    monkeypatch.setattr(U, "unpack_kernel_layout_triton", fake)
    ok = {}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert U._triton_checked(ok, "a", "fine", None, None, lambda t: True, "x", "y") is not None
        assert U._triton_checked(ok, "a", "fine", None, None, lambda t: False, "x", "y") is not None  # checked
        assert U._triton_checked(ok, "b", "fine", None, None, lambda t: False, "x", "y") is None
        assert U._triton_checked(ok, "b", "fine", None, None, None, "x", "y") is None
        assert U._triton_checked(ok, "c", "broken", None, None, None, "x", "y") is None
        assert U._triton_checked(ok, "c", "fine", None, None, None, "x", "y") is None
    assert ok == {"a": True, "b": False, "c": False}
    assert calls == ["fine", "fine", "fine", "broken"]  # kinds already off launch nothing
    assert len(w) == 2 and "differs" in str(w[0].message) and "unavailable" in str(w[1].message)
