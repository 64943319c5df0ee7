"""FP8 dense baseline: quantisation (one source: spense.format), load-time scale checks, activation
quantisation, every kernel kind against the dequantised reference (CPU paths; GPU: ``gpu``)."""

from __future__ import annotations

import pytest
import torch

from spense.errors import FormatError, InputError
from spense.format import SpenseLayout, pack, unpack
from spense.runtime import fp8, wgsp
from spense.runtime.fp8 import Fp8Linear, check_fp8_weights, quantize_rows, quantize_weight, run_kind
from spense.runtime.mmasp import to_kernel_layout

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
sm90 = pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0),
                          reason="needs an sm_90 GPU")


def test_quantize_weight_is_format_pack():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(32, 64, generator=gen)
    g = w.reshape(32, -1, 4)
    w24 = (g * (torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2)).reshape(32, 64)
    wq, s = quantize_weight(w24)
    assert wq.dtype == torch.float8_e4m3fn and s.dtype == torch.float32 and s.shape == (32,)
    p = pack(w24, SpenseLayout((32, 64), "cols"), fp8=True)  # the 2:4 path of the same function
    assert torch.equal(s, p.scale)
    assert torch.equal(wq.float() * s[:, None], unpack(p, dtype=torch.float32))
    assert torch.allclose(s, w24.abs().amax(1) / 448)
    assert (wq.float().abs().amax(1) == 448).all()  # the row maximum maps to the e4m3 maximum
    err = (wq.float() * s[:, None] - w24).abs() / w24.abs().amax(1, keepdim=True)
    assert err.max() <= 2 ** -4 * 1.01  # e4m3: 3 mantissa bits


@pytest.mark.parametrize("bad", ["none", "nan", "inf", "zero", "shape"])
def test_bad_scales_are_refused(bad):
    wq = torch.randn(8, 16).to(torch.float8_e4m3fn)
    s = {"none": None, "nan": torch.tensor([float("nan")] + [1.0] * 7), "inf": torch.full((8,), float("inf")),
         "zero": torch.zeros(8), "shape": torch.ones(7)}[bad]
    with pytest.raises(FormatError):
        check_fp8_weights(wq, s)
    with pytest.raises(FormatError):
        Fp8Linear(wq, s)


def test_packed_fp8_with_bad_scale_refused_by_kernel_layout():
    w = torch.zeros(32, 64)
    w[:, ::2] = torch.randn(32, 32)
    p = pack(w, SpenseLayout((32, 64), "cols"), fp8=True)
    to_kernel_layout(p, "cpu")  # fine
    p.scale[3] = float("nan")
    with pytest.raises(FormatError, match="non-finite"):
        to_kernel_layout(p, "cpu")


def test_kernel_layout_accepts_rows_axis_fp8():
    """The scale has N entries while the sparse values have N - d rows (the v4 device check caught
    a check that compared against the values' rows)."""
    w = torch.zeros(64, 64)
    w[:, ::2] = torch.randn(64, 32)
    w[:32] = torch.randn(32, 64)  # dense rows
    p = pack(w, SpenseLayout((64, 64), "rows", torch.arange(32), block=32), fp8=True)
    kw = to_kernel_layout(p, "cpu")
    assert kw.fp8 and kw.n_out == 64 and kw.wscale.shape == (64,)


def test_quantize_rows_pads_and_scales():
    x = torch.randn(3, 40).to(torch.bfloat16)
    q, s = quantize_rows(x, 16)
    assert q.shape == (16, 40) and s.shape == (16, 1)
    assert torch.allclose(s[:3, 0], x.float().abs().amax(1) / 448)
    assert (q[3:].float() == 0).all() and (s[3:] == 1).all()
    assert torch.allclose(q[:3].float() * s[:3], x.float(), rtol=2 ** -3, atol=1e-6)


@pytest.mark.parametrize("kind,tol", [("w8a16", 1e-2), ("w8a16:32x128x2x4", 1e-2), ("nt", 6e-2), ("swap", 6e-2),
                                      ("compiled", 1e-2), ("w8a16h", 1e-2), ("w8a16h:32x128x2x4", 1e-2),
                                      ("w8a16:16x256x1x4x0x6", 1e-2), ("w8a16h:32x256x2x4x0x5", 1e-2)])
def test_kinds_match_dequantised_reference_cpu(kind, tol):
    gen = torch.Generator().manual_seed(3)
    lin = torch.nn.Linear(96, 48, bias=False)
    f = Fp8Linear.from_linear(lin)
    for M in (1, 7, 33):
        x = torch.randn(M, 96, generator=gen).to(torch.bfloat16)
        ref = x.double() @ f.dequantized_weight(torch.float64).t()
        y = run_kind(kind, x, f.weight, f.scale)
        assert ((y.double() - ref).norm() / ref.norm()).item() < tol


def test_fp8linear_cpu_forward_with_bias():
    lin = torch.nn.Linear(64, 24)
    f = Fp8Linear.from_linear(lin)
    x = torch.randn(2, 5, 64).to(torch.bfloat16)
    y = f(x)
    ref = x.float() @ f.dequantized_weight().t() + f.bias.float()
    assert y.shape == (2, 5, 24) and y.dtype == torch.bfloat16
    assert torch.allclose(y.float(), ref, rtol=2e-2, atol=2e-2)


def test_f16_operand_kind_gives_the_bf16_kinds_result_cpu():
    """``w8a16h`` (x's f16 operand, 2^8 back in the epilogue, bf16 out) against ``w8a16`` on the CPU reference
    arithmetic: the same values where no |x| is below 2^-6 (the operand is exact there), close on tiny x; a
    given operand (``xh``) is used as it is; the default candidates list it (results ah), the extra ones too."""
    gen = torch.Generator().manual_seed(6)
    f = Fp8Linear.from_linear(torch.nn.Linear(128, 40, bias=False))
    x = torch.randn(5, 128, generator=gen)
    x = torch.where(x.abs() < 2.0 ** -6, torch.zeros_like(x), x).to(torch.bfloat16)
    assert torch.equal(run_kind("w8a16h", x, f.weight, f.scale), run_kind("w8a16", x, f.weight, f.scale))
    tiny = x * 2.0 ** -10
    a, b = run_kind("w8a16h", tiny, f.weight, f.scale).double(), run_kind("w8a16", tiny, f.weight, f.scale).double()
    assert ((a - b).norm() / b.norm()).item() < 1e-2
    from spense.runtime.xops import f16_operand
    assert torch.equal(run_kind("w8a16h", torch.zeros_like(x), f.weight, f.scale, xh=f16_operand(x)),
                       run_kind("w8a16", x, f.weight, f.scale))
    assert any(k.startswith("w8a16h") for k in fp8.candidates(8))  # a default candidate since results ah
    assert set(fp8.candidates(8)) < set(fp8.candidates(8, extra=True))
    assert not any(k.startswith("w8a16h") for k in fp8.candidates(2048, extra=True))


def test_pipelining_depth_is_a_sixth_config_element():
    """A config's sixth element is Triton's num_stages (0 or absent: the default); shared memory is budgeted
    with it, so a deep ring of large tiles is not a candidate where it would not fit."""
    from spense.runtime.fp8_dense import SMEM_BUDGET, STAGES, fits, stages_of
    assert stages_of((32, 256, 2, 4)) == stages_of((32, 256, 2, 4, 0, 0)) == STAGES
    assert stages_of((16, 256, 1, 4, 0, 6)) == 6
    assert fits((64, 256, 1, 4, 0, 4), 64) and not fits((64, 256, 1, 4, 0, 8), 64)
    assert 8 * (64 * 256 * 2 + 64 * 256) > SMEM_BUDGET >= 4 * (64 * 256 * 2 + 64 * 256)
    staged = [k for k in fp8.candidates(1, extra=True) if len(fp8.parse_cfg(k) or ()) == 6]
    taken = [k for k in staged if k in fp8.candidates(1)]  # the three that won somewhere in results ak
    assert "w8a16h:64x256x1x4x0x4" in taken and len(taken) < len(staged)
    assert all(fp8.cfg_name(fp8.parse_cfg(k), xh=k.startswith("w8a16h")) == k for k in staged)


def test_load_table(tmp_path):
    p = tmp_path / "t.json"
    p.write_text('{"device": "X", "cc": "9.0", "cells": {"64,32,1": "nt", "64,32,16": "w8a16:32x256x2x4"}}')
    assert fp8.load_table(p) == 2
    assert fp8.CHOICES[("X", "9.0", 64, 32, 16)] == "w8a16:32x256x2x4"


def test_measure_times_the_layers_own_fp8_weight_and_scales(monkeypatch):
    """``measure(weight=, scale=)``: the layer's own e4m3 weight is one of the rotated copies, timed with its own
    scales, so that only the rest are made (none where it alone reaches ``min_bytes``); a weight of another shape,
    dtype or layout is not used, and the random copies are finite e4m3."""
    timed = []

    def fake_time_graph(fns):
        timed.append([f.__defaults__[0] for f in fns])
        fns[0]()
        return 1.0

    scales = []
    monkeypatch.setattr(fp8, "time_graph", fake_time_graph)
    monkeypatch.setattr(fp8, "run_kind", lambda kind, x, w, sw, *a, **k: scales.append(sw))
    wq, s = quantize_weight(torch.randn(32, 64))
    assert fp8.measure(32, 64, 1, "cpu", kinds=["w8a16"], min_bytes=wq.numel(), weight=wq, scale=s) == {"w8a16": 1.0}
    assert len(timed[-1]) == 1 and timed[-1][0].data_ptr() == wq.data_ptr() and torch.equal(scales[-1], s)
    fp8.measure(32, 64, 1, "cpu", kinds=["w8a16"], min_bytes=3 * wq.numel(), weight=wq, scale=s)
    assert len(timed[-1]) == 3 and timed[-1][0].data_ptr() == wq.data_ptr()
    assert all(c.data_ptr() != wq.data_ptr() and c.shape == wq.shape and c.dtype == wq.dtype for c in timed[-1][1:])
    assert all(torch.isfinite(c.float()).all() and c.float().abs().max() > 0 for c in timed[-1][1:])
    for other in (quantize_weight(torch.randn(64, 32))[0].t(), wq.float(), quantize_weight(torch.randn(32, 32))[0],
                  None):
        fp8.measure(32, 64, 1, "cpu", kinds=["w8a16"], min_bytes=wq.numel(), weight=other, scale=s)
        assert len(timed[-1]) == 1 and (other is None or timed[-1][0].data_ptr() != other.data_ptr())
        assert not torch.equal(scales[-1], s)  # random scales go with a random weight


@pytest.mark.gpu
@gpu
def test_gpu_every_fp8_kind_matches_reference():
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(1000, 1536, generator=gen).cuda()
    wq, s = quantize_weight(w)
    wd = wq.double() * s.double()[:, None]
    for M in (1, 7, 16, 33, 64, 2048):
        x = torch.randn(M, 1536, generator=gen).cuda().to(torch.bfloat16)
        ref = x.double() @ wd.t()
        for kind in fp8.candidates(M, extra=True) + ["w8a16"] + (["compiled"] if M == 1 else []):
            y = run_kind(kind, x, wq, s)
            e = ((y.double() - ref).norm() / ref.norm()).item()
            assert e < (6e-2 if kind in ("nt", "swap") else 1e-2), (kind, M, e)
    f = Fp8Linear(wq, s)
    x = torch.randn(3, 1536, device="cuda").to(torch.bfloat16)
    assert torch.isfinite(f(x)).all() and f.kind_for(3) in fp8.candidates(3) + ["sk"]


@pytest.mark.gpu
@gpu
def test_gpu_one_launch_split_k_gives_the_two_launch_bits_in_a_cuda_graph():
    """Split-K in one launch (config element 7, ``serial``): the last slice of a tile adds the planes in order, so
    the output is the two-launch form's bits, eagerly and replayed from a CUDA graph (the tile counters made before
    the capture, left at zero by every launch)."""
    from spense.runtime.fp8_dense import launch_w8a16, tile_counters
    from spense.runtime.xops import f16_operand

    gen = torch.Generator().manual_seed(8)
    wq, s = quantize_weight(torch.randn(1000, 1536, generator=gen).cuda())
    for M, cfg in ((1, (32, 256, 4, 4)), (7, (32, 256, 2, 4, 0, 5)), (16, (64, 256, 2, 8)), (33, (32, 256, 8, 4))):
        x = torch.randn(M, 1536, generator=gen).cuda().to(torch.bfloat16)
        one = cfg + (0,) * (6 - len(cfg)) + (1,)
        for xin, xh in ((x, False), (f16_operand(x), True)):
            two = launch_w8a16(xin, wq, s, cfg, xh=xh)
            assert torch.equal(launch_w8a16(xin, wq, s, one, xh=xh), two), (M, cfg, xh)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                y = launch_w8a16(xin, wq, s, one, xh=xh)
            for _ in range(2):
                g.replay()
                torch.cuda.synchronize()
                assert torch.equal(y, two), (M, cfg, xh, "graph")
    assert int(tile_counters(x.device).abs().sum()) == 0


@pytest.mark.gpu
@sm90
def test_gpu_w8a16_launched_dependent_reads_x_after_the_writer(monkeypatch):
    """SPENSE_FP8_PDL=1: the W8A16 kernel launched dependent (its first weight tile before the wait) gives the
    plain launch's bits for every decode config, bf16 x and its f16 operand, at M = 1 and 16, also right behind a
    Triton kernel that lets it launch at once and writes x after a spin (a missing or misplaced wait reads zeros)."""
    from spense.runtime import fp8_dense
    from spense.runtime.fp8_dense import DECODE_CONFIGS, launch_w8a16
    from spense.runtime.xops import f16_operand
    from test_wgsp_pdl import _late_copy

    monkeypatch.setenv("SPENSE_FP8_PDL", "1")
    fp8_dense.fp8_pdl.cache_clear()
    try:
        gen = torch.Generator().manual_seed(9)
        wq, s = quantize_weight(torch.randn(1000, 4096, generator=gen).cuda())
        for M in (1, 16):
            x = torch.randn(M, 4096, generator=gen).cuda().to(torch.bfloat16)
            for cfg in DECODE_CONFIGS:
                for xin, xh in ((x, False), (f16_operand(x), True)):
                    plain = launch_w8a16(xin, wq, s, cfg, xh=xh, pdl=0)
                    assert torch.equal(launch_w8a16(xin, wq, s, cfg, xh=xh), plain), (M, cfg, xh)
                    late = launch_w8a16(_late_copy(xin, 200_000), wq, s, cfg, xh=xh)
                    torch.cuda.synchronize()
                    assert torch.equal(late, plain), (M, cfg, xh, "late")
    finally:
        fp8_dense.fp8_pdl.cache_clear()


def test_fp8_pdl_switch(monkeypatch):
    """SPENSE_FP8_PDL is off by default, takes 0 or 1, and is refused in one line otherwise; under the
    interpreter or off CUDA the kernel is never launched dependent."""
    from spense.errors import DeviceError
    from spense.runtime import fp8_dense

    try:
        monkeypatch.delenv("SPENSE_FP8_PDL", raising=False)
        fp8_dense.fp8_pdl.cache_clear()
        assert fp8_dense.fp8_pdl() is False
        monkeypatch.setenv("SPENSE_FP8_PDL", "1")
        fp8_dense.fp8_pdl.cache_clear()
        assert fp8_dense.fp8_pdl() is True and not fp8_dense._pdl_on(torch.device("cpu"))
        monkeypatch.setenv("SPENSE_FP8_PDL", "2")
        fp8_dense.fp8_pdl.cache_clear()
        with pytest.raises(DeviceError, match="SPENSE_FP8_PDL"):
            fp8_dense.fp8_pdl()
    finally:
        fp8_dense.fp8_pdl.cache_clear()


@pytest.mark.parametrize("kind", ["w8a16", "w8a16:32x256x2x4", "nt", "swap", "w8a16h:32x256x2x4",
                                  "w8a16h:32x256x2x4x0x0x1"])
def test_kinds_trace_without_graph_breaks(kind):
    wq = torch.randn(32, 64).to(torch.float8_e4m3fn)
    s = torch.rand(32) + 0.5
    x = torch.randn(3, 64).to(torch.bfloat16)
    ex = torch._dynamo.explain(lambda x: run_kind(kind, x, wq, s))(x)
    assert ex.graph_count == 1 and ex.graph_break_count == 0


def test_sk_kind_needs_its_layout_and_traces_through_the_fake():
    """The ``sk`` kind refuses to run without the weight's kernel layout (one line, InputError); with it, a
    fake-tensor trace goes through the op's fake implementation (M x N bf16, nothing run); on CPU an
    Fp8Linear asked for ``sk`` computes the reference, and moving a layer drops the layout it held."""
    from torch.fx.experimental.proxy_tensor import make_fx

    wq, s = quantize_weight(torch.randn(200, 128, generator=torch.Generator().manual_seed(6)))
    x = torch.randn(5, 128).to(torch.bfloat16)
    with pytest.raises(InputError, match="kernel layout"):
        run_kind("sk", x, wq, s)
    kw = wgsp.dense_fp8_kernel_weights(wq, s)
    *ts, geo = wgsp.kernel_weights_op_args(kw)
    g = make_fx(lambda x, *ts: wgsp.wgsd_apply(x, *ts, geo), tracing_mode="fake")(x, *ts)
    ops = [n for n in g.graph.nodes if "wgsd_apply" in str(n.target)]
    assert len(ops) == 1 and ops[0].meta["val"].shape == (5, 200) and ops[0].meta["val"].dtype == torch.bfloat16
    f = Fp8Linear(wq, s, kernel="sk")
    assert f.kind_for(5) == "reference" and f(x).shape == (5, 200)
    f._sk, f._sk_tried = kw, True
    f.to("cpu")  # a move drops the layout: it is made again on the weight's new device
    assert f._sk is None and not f._sk_tried and f.weight.dtype == torch.float8_e4m3fn


@pytest.mark.gpu
@sm90
def test_gpu_sk_kind_matches_reference_and_compiles_without_breaks():
    """Fp8Linear with the ``sk`` kind (our stream-K kernel on the weight as dense rows): within bf16 rounding
    of the dequantised reference at M = 1, 7, 16, 33, 64, its kernel layout made on first use; M > 64 takes
    the default kind; torch.compile traces it with no graph break; opcheck passes on spense::wgsd_apply."""
    gen = torch.Generator().manual_seed(7)
    wq, s = quantize_weight(torch.randn(1000, 1536, generator=gen).cuda())
    wd = wq.double() * s.double()[:, None]
    f = Fp8Linear(wq, s, kernel="sk")
    for M in (1, 7, 16, 33, 64, 100):
        x = torch.randn(M, 1536, generator=gen).cuda().to(torch.bfloat16)
        ref = x.double() @ wd.t()
        y = f(x)
        e = ((y.double() - ref).norm() / ref.norm()).item()
        assert e < (6e-2 if M > 64 else 1e-2), (M, e)
        assert (f.kind_for(M) == "sk") == (M <= 64), M
    assert f._sk is not None
    x = torch.randn(16, 1536, generator=gen).cuda().to(torch.bfloat16)
    ex = torch._dynamo.explain(f)(x)
    assert ex.graph_count == 1 and ex.graph_break_count == 0
    torch.library.opcheck(torch.ops.spense.wgsd_apply.default, (x, *wgsp.kernel_weights_op_args(f._sk)))


@pytest.mark.gpu
@gpu
def test_gpu_w8a8_kinds_fall_back_where_scaled_mm_refuses():
    """N (or K) not a multiple of 16: the W8A8 kinds run the weight-only kernel (within bf16 rounding), never
    cuBLASLt's error; fp8.measure leaves them out there."""
    gen = torch.Generator().manual_seed(8)
    wq, s = quantize_weight(torch.randn(1000, 1536, generator=gen).cuda())
    assert not fp8.scaled_mm_fits(wq) and fp8.scaled_mm_fits(wq[:992])
    x = torch.randn(5, 1536, generator=gen).cuda().to(torch.bfloat16)
    ref = x.double() @ (wq.double() * s.double()[:, None]).t()
    for kind in ("nt", "swap"):
        y = run_kind(kind, x, wq, s)
        assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-2, kind
    assert not {"nt", "swap"} & set(fp8.measure(1000, 1536, 8, "cuda", min_bytes=1e6))
