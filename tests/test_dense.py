"""Dense BF16 linears (spense.runtime.dense): the streaming kernel with no scales under TRITON_INTERPRET=1
(subprocess), the op's CPU path, fake and opcheck, the choice rules and the table, the engine model's use of it;
GPU checks (``gpu``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from spense.runtime import dense
from spense.runtime.fp8 import device_key

SRC = str(Path(__file__).resolve().parents[1] / "src")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

_INTERP = textwrap.dedent("""
    import torch
    from spense.runtime.dense import STREAM_CONFIGS
    from spense.runtime.fp8_dense import launch_w8a16, tile_counters
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for cfg in STREAM_CONFIGS[:5]:
        for M, N, K in ((1, 72, 520), (5, 64, 256)):  # tails in N and in K
            x = torch.randn(M, K, generator=gen)
            w = torch.randn(N, K, generator=gen)
            y = launch_w8a16(x, w, None, cfg)
            r = x.double() @ w.double().T
            worst = max(worst, ((y.double() - r).norm() / r.norm()).item())
            if cfg[2] > 1:  # the slices summed in one launch: the two-launch form's bits, counters back at 0
                assert torch.equal(y, launch_w8a16(x, w, None, cfg[:6] + (0,))), cfg
                assert int(tile_counters(x.device).abs().sum()) == 0
    for dt in (torch.bfloat16, torch.float16):  # the output in x's dtype, rounded once from the float32 sums
        x, w = torch.randn(3, 520, generator=gen).to(dt), torch.randn(72, 520, generator=gen).to(dt)
        y = launch_w8a16(x, w, None, STREAM_CONFIGS[0])
        assert y.dtype == dt, y.dtype
        r = x.double() @ w.double().T
        assert ((y.double() - r).norm() / r.norm()).item() < 1e-2
    print("WORST", worst)
""")


def test_stream_kernel_without_scales_interpreted():
    """The FP8 baseline's kernel with ``scale=None`` (``SCALED`` off) is ``x @ w.T`` on a plain weight, with tails
    in N and K, and its one-launch split-K gives the two-launch bits."""
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=SRC)
    r = subprocess.run([sys.executable, "-c", _INTERP], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert float(r.stdout.split("WORST")[-1]) < 1e-5, r.stdout


def test_op_cpu_path_fake_and_opcheck():
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(3, 64, generator=gen).bfloat16(), torch.randn(40, 64, generator=gen).bfloat16()
    y = dense.dense_stream_mm(x, w, 32, 128, 2, 4, 3, 1)
    assert y.dtype == torch.bfloat16 and torch.equal(y, F.linear(x.float(), w.float()).bfloat16())
    torch.library.opcheck(torch.ops.spense.dense_stream_mm.default, (x, w, 32, 128, 2, 4, 3, 1))
    ex = torch._dynamo.explain(lambda a: dense.run_kind("stream:32x128x2x4x0x3x1", a, w))(x)
    assert ex.graph_break_count == 0


def test_dense_linear_is_f_linear_off_cuda():
    """On CPU ``dense_linear`` is ``F.linear`` bit for bit (any dtype, bias, leading dims), and no kind is chosen."""
    gen = torch.Generator().manual_seed(2)
    for dt in (torch.float32, torch.bfloat16):
        x, w, b = (torch.randn(*s, generator=gen).to(dt) for s in ((2, 3, 48), (24, 48), (24,)))
        assert torch.equal(dense.dense_linear(x, w, b), F.linear(x, w, b))
        assert torch.equal(dense.dense_linear(x, w), F.linear(x, w))
    assert dense.choose(24, 48, 1, "cpu") == "cublas"
    assert dense.tune(24, 48, "cpu") == {}


def test_kind_names_and_candidates():
    for cfg in dense.STREAM_CONFIGS:
        assert dense.parse_stream(dense.stream_name(cfg)) == cfg
    for bad in ("cublas", "stream:32x128", "w8a16:32x128x1x4"):
        with pytest.raises(ValueError):
            dense.parse_stream(bad)
    assert dense.candidates(2048) == ["cublas"]  # prefill: cuBLAS only
    c1, c64 = dense.candidates(1), dense.candidates(64)
    assert c1[0] == "cublas" and len(c1) == len(dense.STREAM_CONFIGS) + 1
    assert set(c64) < set(c1)  # deep rings of wide tiles do not fit 64 token rows of bf16
    assert dense.stream_name((64, 256, 1, 4, 0, 5, 0)) in c1 and dense.stream_name((64, 256, 1, 4, 0, 5, 0)) not in c64


def test_stream_switch(monkeypatch):
    dense.reset_switch()
    try:
        monkeypatch.setenv("SPENSE_DENSE_STREAM", "0")
        assert not dense.stream_on()
        monkeypatch.setenv("SPENSE_DENSE_STREAM", "1")
        assert not dense.stream_on()  # read once
        dense.reset_switch()
        monkeypatch.setenv("SPENSE_DENSE_STREAM", "2")
        with pytest.raises(Exception, match="SPENSE_DENSE_STREAM"):
            dense.stream_on()
    finally:
        dense.reset_switch()


def test_fastest_keeps_cublas_within_the_margin():
    assert dense.fastest({}) == "cublas"
    assert dense.fastest({"cublas": 1.0, "stream:a": 1.0 / dense.MARGIN}) == "cublas"  # not more than the margin
    assert dense.fastest({"cublas": 1.0, "stream:a": 0.98, "stream:b": 0.95}) == "stream:b"
    assert dense.fastest({"cublas": 1.0, "stream:a": 1.2}) == "cublas"
    assert dense.fastest({"stream:a": 1.2}) == "stream:a"  # cuBLAS not measured


def test_kept_kinds_names_each_shape_bucket_and_whether_measured(fresh_choices, monkeypatch):
    """The kinds kept for one device, per shape and M bucket up to the one asked, each marked measured where this
    process timed it (a key in TIMES) rather than read it from the table; another device's, and shapes not asked
    for, are left out."""
    monkeypatch.setattr(dense, "device_key", lambda dev: ("GPU", 90))
    dense._KINDS.clear()
    dense.TIMES.clear()
    dense._KINDS.update({(0, 1024, 640, 1): "cublas", (0, 1024, 640, 8): "stream:x", (0, 1024, 640, 16): "cublas",
                         (1, 64, 64, 1): "cublas"})
    dense.TIMES[("GPU", 90, 1024, 640, 8)] = {"cublas": 1.0, "stream:x": 0.9}
    assert dense.kept_kinds(torch.device("cuda", 0), max_m=8) == {
        "1024,640": {1: {"kind": "cublas", "measured": False}, 8: {"kind": "stream:x", "measured": True}}}
    assert dense.kept_kinds(torch.device("cuda", 1)) == {"64,64": {1: {"kind": "cublas", "measured": False}}}
    assert dense.kept_kinds(torch.device("cuda", 0), shapes={(64, 64)}) == {}  # only the shapes the model runs


def test_packaged_table_names_known_kinds():
    """Every cell of the shipped table is cuBLAS or a streaming config among the candidates of its bucket, and the
    one :func:`dense.fastest` picks from the times it was measured with."""
    d = json.loads(dense.PACKAGED_TABLE.read_text())
    assert d["cells"] and d["margin"] == dense.MARGIN
    for key, kind in d["cells"].items():
        N, K, b = (int(v) for v in key.split(","))
        assert kind in dense.candidates(b), (key, kind)
        assert kind == dense.fastest(d["times_us"][key]), key


def test_engine_model_runs_plain_linears_through_dense_linear(monkeypatch):
    """The engine's plain linears (fused q/k/v and gate/up, o, down, lm_head) go through ``dense_linear``; the
    shapes ``plan_decode`` tunes are those it sees, a fused projection's members left out."""
    from spense.engine.load import random_model
    from spense.engine.model import dense_shapes

    m = random_model("qwen3-tiny", torch.device("cpu"), torch.float32)
    m.fuse_projections()
    a = m.args
    kv = a.n_kv_head * a.head_dim
    assert dense_shapes(m) == {(a.n_head * a.head_dim + 2 * kv, a.dim), (a.dim, a.n_head * a.head_dim),
                               (2 * a.intermediate_size, a.dim), (a.dim, a.intermediate_size), (a.vocab_size, a.dim)}
    m.setup_caches(1, 128)
    idx, pos = torch.tensor([[1, 2, 3]]), torch.arange(3)
    ref = m(idx, pos, 128, torch.zeros(1, dtype=torch.long))
    seen = []
    real = F.linear

    def spy(x, w, b=None):
        seen.append(tuple(w.shape))
        return real(x, w, b)

    import spense.engine.model as model_mod
    monkeypatch.setattr(model_mod, "dense_linear", spy)
    m.setup_caches(1, 128)
    out = m(idx, pos, 128, torch.zeros(1, dtype=torch.long))
    assert out.shape == ref.shape
    assert set(seen) == dense_shapes(m) and len(seen) == 4 * a.n_layer + 1
    # unfused: q, k, v, gate, up each through dense_linear, and dense_shapes names them
    m2 = random_model("qwen3-tiny", torch.device("cpu"), torch.float32)
    m2.setup_caches(1, 128)
    seen.clear()
    m2(idx, pos, 128, torch.zeros(1, dtype=torch.long))
    assert set(seen) == dense_shapes(m2) and len(seen) == 7 * a.n_layer + 1
    assert (a.intermediate_size, a.dim) in dense_shapes(m2) and (kv, a.dim) in dense_shapes(m2)
    # dense_weights: one of the model's own weights per shape, the fused ones where fused
    from spense.engine.model import dense_weights

    for mm in (m, m2):
        ws = dense_weights(mm)
        params = {t.data_ptr() for t in mm.parameters()} | {t.data_ptr() for t in mm.buffers()}
        fused = {getattr(mod, n).data_ptr() for mod in mm.modules() for n in ("qkv_weight", "gate_up_weight")
                 if getattr(mod, n, None) is not None}
        assert set(ws) == dense_shapes(mm) and all(tuple(w.shape) == k for k, w in ws.items())
        assert all(w.data_ptr() in params | fused for w in ws.values())
    assert ws[a.vocab_size, a.dim] is m2.lm_head.weight


def test_measure_times_the_layers_own_weight_as_one_of_its_copies(monkeypatch):
    """``measure(weight=...)``: the layer's own weight is one of the rotated copies, so only the rest are made (none
    where it alone reaches ``min_bytes``); a weight of another shape, dtype or layout is not used."""
    timed = []

    def fake_time_graph(fns):
        timed.append([f.__defaults__[0] for f in fns])
        return 1.0

    monkeypatch.setattr(dense, "time_graph", fake_time_graph)
    w = torch.randn(32, 64).bfloat16()
    nbytes = w.numel() * 2
    assert dense.measure(32, 64, 1, "cpu", kinds=["cublas"], min_bytes=nbytes, weight=w) == {"cublas": 1.0}
    assert len(timed[-1]) == 1 and timed[-1][0].data_ptr() == w.data_ptr()
    dense.measure(32, 64, 1, "cpu", kinds=["cublas"], min_bytes=3 * nbytes, weight=w)
    assert len(timed[-1]) == 3 and timed[-1][0].data_ptr() == w.data_ptr()
    assert all(c.data_ptr() != w.data_ptr() and c.shape == w.shape for c in timed[-1][1:])
    for other in (torch.randn(64, 32).bfloat16().t(), w.float(), torch.randn(32, 32).bfloat16(), None):
        dense.measure(32, 64, 1, "cpu", kinds=["cublas"], min_bytes=nbytes, weight=other)
        assert len(timed[-1]) == 1 and (other is None or timed[-1][0].data_ptr() != other.data_ptr())


@pytest.mark.gpu
@gpu
def test_gpu_every_stream_config_matches_cublas(fresh_choices):
    """Each streaming config (and its table's kinds) against cuBLAS on bf16 weights at M = 1, 5, 16, 33, within
    bf16 rounding; replayed from a CUDA graph, the same bits as eagerly."""
    gen = torch.Generator(device="cuda").manual_seed(3)
    w = torch.randn(1000, 1536, device="cuda", generator=gen).bfloat16()
    from spense.runtime.fp8_dense import tile_counters
    tile_counters(torch.device("cuda"))  # made outside capture
    for M in (1, 5, 16, 33):
        x = torch.randn(M, 1536, device="cuda", generator=gen).bfloat16()
        ref = x.double() @ w.double().T
        for kind in dense.candidates(M):
            y = dense.run_kind(kind, x, w)
            e = ((y.double() - ref).norm() / ref.norm()).item()
            assert e < 1e-2, (kind, M, e)
    x = torch.randn(1, 1536, device="cuda", generator=gen).bfloat16()
    kind = dense.stream_name(dense.STREAM_CONFIGS[0])
    eager = dense.run_kind(kind, x, w)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = dense.run_kind(kind, x, w)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, eager)


@pytest.fixture
def fresh_choices():
    """The module's kept choices as they were before the test (a GPU test's measurements do not leak)."""
    saved = (dict(dense.CHOICES), dict(dense._KINDS), dict(dense.TIMES))
    yield
    for d, old in zip((dense.CHOICES, dense._KINDS, dense.TIMES), saved):
        d.clear()
        d.update(old)


@pytest.mark.gpu
@gpu
def test_gpu_choice_is_measured_once_kept_and_never_inside_a_capture(fresh_choices, monkeypatch):
    """A shape missing from the table is measured on first use (cuBLAS among the kinds) and kept; inside a CUDA-graph
    capture a shape not yet chosen is not measured (cuBLAS) and not kept, so a later first use outside measures it."""
    N, K = 1000, 1536
    key = (*device_key(torch.device("cuda")), N, K, 1)
    dense.CHOICES.pop(key, None)
    kind = dense.kind_for(N, K, 1, torch.device("cuda"))
    assert "cublas" in dense.TIMES[key] and kind == dense.fastest(dense.TIMES[key])

    def no_more(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(dense, "measure", no_more)
    assert dense.kind_for(N, K, 1, torch.device("cuda")) == kind
    N2 = 1008
    x = torch.randn(1, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(N2, K, device="cuda", dtype=torch.bfloat16)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    g = torch.cuda.CUDAGraph()
    with torch.cuda.stream(s), torch.cuda.graph(g):
        y = dense.dense_linear(x, w)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, torch.nn.functional.linear(x, w))  # cuBLAS inside the capture
    assert (0, N2, K, 1) not in dense._KINDS and (torch.cuda.current_device(), N2, K, 1) not in dense._KINDS


@pytest.mark.gpu
@gpu
def test_gpu_dense_linear_forms_and_compiled(fresh_choices):
    """``dense_linear`` on CUDA: leading dims, a row view of a fused weight (rows contiguous, stride(0) = K), f16,
    within rounding of the float64 product for every kind a bucket may take; a bias or an fp32 x takes cuBLAS (the
    same bits); compiled with fullgraph after ``tune``, the streaming op is in the graph and gives the eager bits."""
    gen = torch.Generator(device="cuda").manual_seed(4)
    fused = torch.randn(3072, 1024, device="cuda", generator=gen).bfloat16()
    w = fused[1024:2048]  # a row view, as a fused projection's member
    cfg = dense.STREAM_CONFIGS[0]
    dense.CHOICES[(*device_key(torch.device("cuda")), 1024, 1024, 1)] = dense.stream_name(cfg)
    dense._KINDS.pop((torch.cuda.current_device(), 1024, 1024, 1), None)
    x = torch.randn(1, 1, 1024, device="cuda", generator=gen).bfloat16()
    y = dense.dense_linear(x, w)
    ref = x.double() @ w.double().T
    assert y.shape == (1, 1, 1024) and ((y.double() - ref).norm() / ref.norm()).item() < 1e-2
    assert torch.equal(y.reshape(1, -1), dense.run_kind(dense.stream_name(cfg), x.reshape(1, -1), w))
    b = torch.randn(1024, device="cuda", generator=gen).bfloat16()
    assert torch.equal(dense.dense_linear(x, w, b), torch.nn.functional.linear(x, w, b))
    xf = x.float()
    assert torch.equal(dense.dense_linear(xf, w.float()), torch.nn.functional.linear(xf, w.float()))
    yh = dense.dense_linear(x.half(), w.half())
    assert yh.dtype == torch.float16 and ((yh.double() - ref).norm() / ref.norm()).item() < 1e-2
    dense.tune(1024, 1024, "cuda", ms=(1,))
    f = torch.compile(lambda a: dense.dense_linear(a, w), fullgraph=True, dynamic=False)
    assert torch.equal(f(x), y)
    ex = torch._dynamo.explain(lambda a: dense.dense_linear(a, w))(x)
    assert ex.graph_count == 1 and ex.graph_break_count == 0
    assert "dense_stream_mm" in str(ex.graphs[0].graph)
