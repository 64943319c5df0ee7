"""The prefill GEMM on sparse warpgroup MMA (``spense.runtime.wgsp``): its switches, where it applies, the
fallback everywhere else, and on an sm_90 GPU (``gpu``) its forms' outputs against the float64 reference."""

import os
import subprocess
from types import SimpleNamespace

import pytest
import torch

from spense.errors import DeviceError
from spense.format import pack, unpack
from spense.runtime import SpenseLinear, wgsp
from spense.runtime.xops import f16_operand
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


@pytest.fixture
def env_switch(monkeypatch, request):
    """Sets one of the read-once switches SPENSE_WGSP_CLUSTER / SPENSE_WGSD_MIN_M(_LARGE) / SPENSE_WGSD_SK /
    SPENSE_WGSD_EXP / SPENSE_WGSD_F16_MAX_M for one test."""
    fns = {"SPENSE_WGSP_CLUSTER": wgsp.wgsp_cluster, "SPENSE_WGSD_MIN_M": wgsp.wgsd_min_m,
           "SPENSE_WGSD_MIN_M_LARGE": wgsp.wgsd_min_m_large, "SPENSE_WGSD_SK": wgsp.wgsd_stream_k,
           "SPENSE_WGSD_EXP": wgsp.wgsd_exp, "SPENSE_WGSD_SK_MIN_NK": wgsp.wgsd_sk_min_nk,
           "SPENSE_WGSD_F16_MAX_M": wgsp.wgsd_f16_max_m, "SPENSE_WGSD_SK_SPLIT": wgsp.wgsd_sk_split}

    def set_(name: str, v: str | None):
        if v is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, v)
        fns[name].cache_clear()
    request.addfinalizer(lambda: [f.cache_clear() for f in fns.values()])
    return set_


def test_cluster_and_decode_form_switches(env_switch):
    """The cluster prefill is off by default, the decode form serves M = 17..64 (large layers from M = 9)
    and picks stream-K by the layer (2), with the stream-K epilogue measured fastest in the engine and x in f16
    for e4m3 (2049);
    SPENSE_WGSP_CLUSTER takes 0 or 1, SPENSE_WGSD_SK 0..2, SPENSE_WGSD_MIN_M(_LARGE) 0..64 (the decode
    form's 64 tokens per work block), SPENSE_WGSD_EXP 0..4095 and SPENSE_WGSD_SK_MIN_NK >= 1; anything else is
    refused in one line."""
    names = ("SPENSE_WGSP_CLUSTER", "SPENSE_WGSD_MIN_M", "SPENSE_WGSD_MIN_M_LARGE", "SPENSE_WGSD_SK",
             "SPENSE_WGSD_EXP", "SPENSE_WGSD_SK_MIN_NK")
    for name in names:
        env_switch(name, None)
    assert wgsp.wgsp_cluster() is False and wgsp.wgsd_min_m() == 17 and wgsp.wgsd_stream_k() == 2
    assert wgsp.wgsd_exp() == 2049 and wgsp.wgsd_min_m_large() == 9 and wgsp.wgsd_sk_min_nk() == wgsp.SK_MIN_NK
    env_switch("SPENSE_WGSD_EXP", "7")
    assert wgsp.wgsd_exp() == 7
    env_switch("SPENSE_WGSP_CLUSTER", "1")
    env_switch("SPENSE_WGSD_MIN_M", "1")
    env_switch("SPENSE_WGSD_SK", "0")
    assert wgsp.wgsp_cluster() is True and wgsp.wgsd_min_m() == 1 and wgsp.wgsd_stream_k() == 0
    fns = {"SPENSE_WGSP_CLUSTER": wgsp.wgsp_cluster, "SPENSE_WGSD_MIN_M": wgsp.wgsd_min_m,
           "SPENSE_WGSD_MIN_M_LARGE": wgsp.wgsd_min_m_large, "SPENSE_WGSD_SK": wgsp.wgsd_stream_k,
           "SPENSE_WGSD_EXP": wgsp.wgsd_exp, "SPENSE_WGSD_SK_MIN_NK": wgsp.wgsd_sk_min_nk}
    for name, bad in (("SPENSE_WGSP_CLUSTER", "2"), ("SPENSE_WGSD_MIN_M", "65"), ("SPENSE_WGSD_MIN_M", "x"),
                      ("SPENSE_WGSD_MIN_M_LARGE", "-1"), ("SPENSE_WGSD_SK", "3"), ("SPENSE_WGSD_EXP", "4096"),
                      ("SPENSE_WGSD_SK_MIN_NK", "0")):
        env_switch(name, bad)
        with pytest.raises(DeviceError, match=name):
            fns[name]()


def test_decode_form_threshold_by_layer_size(env_switch):
    """A layer of at least LARGE_NK weights (bf16 or FP8) takes the decode form from
    SPENSE_WGSD_MIN_M_LARGE tokens, a smaller one from SPENSE_WGSD_MIN_M; 0 in either switch turns the large
    layers' own threshold off, and SPENSE_WGSD_MIN_M=0 turns the decode form off for all."""
    for name in ("SPENSE_WGSD_MIN_M", "SPENSE_WGSD_MIN_M_LARGE"):
        env_switch(name, None)
    big, mid, small = (5120, 25600), (24576, 4096), (4096, 12288)  # 32B.down (1.3e8), 8B.gate_up (1.0e8), 8B.down
    assert wgsp.wgsd_min_m_for(*big) == 9 and wgsp.wgsd_min_m_for(*small) == 17
    assert wgsp.wgsd_min_m_for(*mid) == 9
    assert wgsp.wgsd_min_m_for(wgsp.LARGE_NK // 1000, 1000) == 9  # the bound itself is large
    assert wgsp.wgsd_min_m_for(wgsp.LARGE_NK // 1000 - 1, 1000) == 17
    env_switch("SPENSE_WGSD_MIN_M_LARGE", "0")
    assert wgsp.wgsd_min_m_for(*big) == 17
    env_switch("SPENSE_WGSD_MIN_M_LARGE", "40")  # never above the threshold of all layers
    assert wgsp.wgsd_min_m_for(*big) == 17
    env_switch("SPENSE_WGSD_MIN_M_LARGE", None)
    env_switch("SPENSE_WGSD_MIN_M", "0")
    assert wgsp.wgsd_min_m_for(*big) == 0 and wgsp.wgsd_min_m_for(*small) == 0


def test_decode_form_declines_off_the_gpu(env_switch):
    """With the decode form switched on from M = 1, a layer off an sm_90 GPU is not served by it (the
    packed layer keeps its backends, with the reference's output) and wgsp_forward declines it."""
    env_switch("SPENSE_WGSD_MIN_M", "1")
    w, lay = make(256, 128, "rows", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    assert not m._wgsd_serves(16)  # not compacted (CPU): only compacted layers hold the kernel layout
    x = torch.randn(16, 128)
    assert wgsp.wgsp_forward(m._kw(), x, decode=True) is None
    assert torch.allclose(m(x), x @ unpack(m.packed, dtype=torch.float32).T, atol=1e-4, rtol=1e-4)


def test_f16_operand_and_where_it_is_taken(env_switch):
    """Variant bit 2048's x operand: x * 2^-8 in f16, exact (times 2^8 back) for |x| in [2^-6, 2^24), within
    2^-17 below, inf at 2^24; taken for e4m3 weights at M <= 32 (16 under SPENSE_WGSD_F16_MAX_M=16) where the
    pair form runs (bits of 1 or 513, not 16, 32 or 65 alone), never for bf16 weights or past that M."""
    x = torch.tensor([1.0, -3.5, 2.0 ** -6, 1e-3, -2.0 ** 23 * 1.5, 2.0 ** 24]).to(torch.bfloat16)
    back = f16_operand(x).float() * 256
    assert back.dtype == torch.float32 and f16_operand(x).dtype == torch.float16
    assert torch.equal(back[[0, 1, 2, 4]], x.float()[[0, 1, 2, 4]])
    assert abs(back[3] - x.float()[3]) <= 2.0 ** -17 and back[5] == float("inf")
    e4, b16 = SimpleNamespace(fp8=True), SimpleNamespace(fp8=False)
    env_switch("SPENSE_WGSD_F16_MAX_M", "16")  # as before the twenty-fourth stop: tiles of 16 only
    for v, m, want in (("2049", 16, True), ("2561", 1, True), ("2049", 17, False), ("1", 16, False),
                       ("2113", 16, False), ("2625", 16, True), ("2065", 16, False), ("2081", 16, False)):
        env_switch("SPENSE_WGSD_EXP", v)
        assert wgsp.wgsd_f16_x(e4, m) is want, (v, m)
        assert not wgsp.wgsd_f16_x(b16, m)
    # by default (SPENSE_WGSD_F16_MAX_M=32) tiles of 32 tokens too (kernel 2625 there), never past 32; 16 or 32 only
    env_switch("SPENSE_WGSD_EXP", None)
    env_switch("SPENSE_WGSD_F16_MAX_M", None)
    assert wgsp.wgsd_f16_max_m() == 32
    assert [wgsp.wgsd_f16_x(e4, m) for m in (1, 17, 32, 33)] == [True, True, True, False]
    assert not wgsp.wgsd_f16_x(b16, 32)
    for bad in ("24", "64", "x"):
        env_switch("SPENSE_WGSD_F16_MAX_M", bad)
        with pytest.raises(DeviceError, match="SPENSE_WGSD_F16_MAX_M"):
            wgsp.wgsd_f16_max_m()


def test_f16_operand_is_built_beside_x_and_reaches_the_stream_k_form(env_switch, monkeypatch):
    """Where a compacted FP8 layer runs the stream-K form with x in f16 (variant bit 2048 at M <= 32),
    forward builds x's f16 operand as plain tensor ops (so that torch.compile fuses it into the op producing
    x) and the layer hands it to the kernel; elsewhere no operand; the mma.sp fallback never gets it.  The
    FP8 dense kind ``sk`` gives the kernel the operand the same way.  (Routing only, on the CPU: the kernel
    and the layer's serving rule are stand-ins.)"""
    from spense.runtime import fp8 as f8
    from spense.runtime import linear as lin

    w, lay = make(256, 128, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    m._kernel = SimpleNamespace(fp8=True)
    monkeypatch.setattr(m, "_wgsd_serves", lambda M: True)
    x = torch.randn(4, 128).to(torch.bfloat16)
    env_switch("SPENSE_WGSD_EXP", "2049")
    xh = m._fragments(x)
    assert xh.dtype == torch.float16 and torch.equal(xh, f16_operand(x))
    assert m._fragments(torch.randn(33, 128).to(torch.bfloat16)).numel() == 0  # past M = 32: none
    seen = {}
    monkeypatch.setattr(lin, "wgsp_forward", lambda kw, x2, decode: seen.setdefault("x", x2))
    monkeypatch.setattr(m, "forward_mmasp", lambda x2, xf=None: seen.setdefault("xf", xf))
    m.run_backend("auto", x, xh)
    assert seen["x"] is xh and "xf" not in seen
    monkeypatch.setattr(lin, "wgsp_forward", lambda kw, x2, decode: None)  # the kernel declines: mma.sp
    m.run_backend("auto", x, xh)
    assert "xf" in seen and seen["xf"] is None
    env_switch("SPENSE_WGSD_EXP", "1")
    assert m._fragments(x).numel() == 0
    monkeypatch.setattr(wgsp, "wgsd_apply", lambda x2, *a: seen.setdefault("sk", x2))
    kw = SimpleNamespace(fp8=True, sv=None, sm=None, dv=None, sblk=None, dblk=None, out_row=None, wscale=None,
                         rows_sparse=0, rows_dense=128, Ss=0, SdA=0, SdB=2, n_out=100)
    env_switch("SPENSE_WGSD_EXP", "2049")
    f8.run_kind("sk", x, None, None, kw=kw)
    assert seen["sk"].dtype == torch.float16 and torch.equal(seen["sk"], xh)


def test_wgsp_prefill_falls_back_off_the_gpu(min_m):
    """With the switch on, a layer whose input is not on an sm_90 GPU prefills as before (the unpack and
    one dense GEMM), with the reference's output; wgsp_forward itself declines without loading anything."""
    min_m("1")
    w, lay = make(256, 128, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    x = torch.randn(300, 128)
    assert wgsp.wgsp_forward(m._kw(), x) is None
    assert torch.allclose(m(x), x @ unpack(m.packed, dtype=torch.float32).T, atol=1e-4, rtol=1e-4)


def compacted(kind: str, seed: int):
    """A compacted bf16 CUDA layer (1024 x 4096, 25 % dense column blocks or rows), its float64 dense
    reference weight, and the generator that made them (for the inputs)."""
    gen = torch.Generator().manual_seed(seed)
    w, lay = prefill_weight(kind, 1024, 4096, gen)
    p = pack(w.to("cuda", torch.bfloat16), lay)
    return SpenseLinear(p, backend="auto").compact(), unpack(p, dtype=torch.float32).double(), gen


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
def test_gpu_wgsp_prefill_matches_reference(min_m, kind):
    """A compacted bf16 layer at 25 % dense (column blocks or rows) prefills through the sparse warpgroup
    MMA kernel from SPENSE_WGSP_MIN_M tokens (ragged token tiles included), within bf16 rounding of the
    float64 reference; below it, the unpack path gives the same within rounding."""
    m, wref, gen = compacted(kind, 11)
    K = m.in_features
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


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
@pytest.mark.parametrize("stream_k", ["1", "0"])
def test_gpu_wgsp_cluster_and_decode_forms_match_reference(min_m, env_switch, kind, stream_k):
    """The prefill form in clusters of two (SPENSE_WGSP_CLUSTER=1; at M = 300 an odd number of token tiles,
    the cluster padded with a CTA past M) and the decode form (SPENSE_WGSD_MIN_M, M = 1, 7, 16, 33, 64;
    stream-K or K split over clusters) of a compacted bf16 layer at 25 % dense, within bf16 rounding of the
    float64 reference; a compacted layer at M >= SPENSE_WGSD_MIN_M runs the decode form (the same bits as
    called directly, on every call; below it the mma.sp kernel, within rounding)."""
    m, wref, gen = compacted(kind, 12)
    K = m.in_features
    min_m("65")
    env_switch("SPENSE_WGSP_CLUSTER", "1")
    env_switch("SPENSE_WGSD_MIN_M", "16")
    env_switch("SPENSE_WGSD_MIN_M_LARGE", "0")  # one threshold for every layer size
    env_switch("SPENSE_WGSD_SK", stream_k)
    for M in (1, 7, 16, 33, 64, 200, 300, 2048):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ wref.T
        direct = wgsp.wgsp_forward(m._kernel, x, decode=M <= 64)
        assert direct is not None, (kind, M)
        e = ((direct.double() - ref).norm() / ref.norm()).item()
        assert e <= 1e-2, (kind, M, e)
        y = m(x)
        assert ((y.double() - ref).norm() / ref.norm()).item() <= 1e-2, (kind, M)
        if M >= 16:  # the decode form from SPENSE_WGSD_MIN_M, the clustered prefill above 64
            assert torch.equal(y, direct), (kind, M)


def _sk_kw(n: int, k: int, fp8: bool = True, dense_rows: int = 0):
    """The geometry of a Spense layer's kernel layout (no tensors): 25 % dense columns, or ``dense_rows``."""
    if dense_rows:
        return SimpleNamespace(rows_sparse=n - dense_rows, rows_dense=dense_rows, Ss=k // 128, SdA=0,
                               SdB=k // 64, fp8=fp8)
    return SimpleNamespace(rows_sparse=n, rows_dense=0, Ss=k * 3 // 256, SdA=k // 256, SdB=0, fp8=fp8)


QWEN3_SHAPES = {"8B.qkv": (6144, 4096), "8B.o": (4096, 4096), "8B.gate_up": (24576, 4096),
                "8B.down": (4096, 12288), "32B.qkv": (10240, 5120), "32B.o": (5120, 8192),
                "32B.gate_up": (51200, 5120), "32B.down": (5120, 25600)}


@pytest.mark.parametrize("fp8", [True, False])
def test_stream_k_grid_gives_whole_shares(env_switch, fp8):
    """By default the stream-K form's CTAs split each row block into equal shares or take whole blocks: every
    CTA's units (SkGeo::u0, c T / G) start and end inside one block or on block bounds, on 132 SMs and on
    fewer; past two blocks per SM (32B.gate_up) one CTA per SM.  SPENSE_WGSD_SK_SPLIT=0 is one per SM,
    k >= 1 k CTAs per block (at most the SMs); blocks of two sizes (dense rows) keep one per SM."""
    env_switch("SPENSE_WGSD_SK_SPLIT", None)
    for name, (n, k) in QWEN3_SHAPES.items():
        kw = _sk_kw(n, k, fp8)
        blocks, per = n // 128, wgsp.sk_units(kw) // (n // 128)
        for n_sm in (132, 114, 78):
            g = wgsp.wgsd_sk_ctas(kw, n_sm)
            if blocks > 2 * min(n_sm, wgsp.sk_units(kw) // 128):
                assert g == 0, (name, n_sm)
                continue
            assert 0 < g <= min(n_sm, wgsp.sk_units(kw) // 128), (name, n_sm, g)
            t = blocks * per
            for c in range(g):  # the share's first and last units lie in one block, or it is whole blocks
                u0, u1 = c * t // g, (c + 1) * t // g
                assert u0 // per == (u1 - 1) // per or (u0 % per == 0 and u1 % per == 0), (name, n_sm, g, c)
            assert g >= min(n_sm, wgsp.sk_units(kw) // 128) // 2, (name, n_sm, g)  # at least half the CTAs
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8), 132) == (64 if fp8 else 128)  # 8B.o
    assert wgsp.wgsd_sk_ctas(_sk_kw(24576, 4096, fp8), 132) == 96  # 8B.gate_up: two blocks per CTA
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8, dense_rows=1024), 132) == 0
    env_switch("SPENSE_WGSD_SK_SPLIT", "0")
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8), 132) == 0
    env_switch("SPENSE_WGSD_SK_SPLIT", "3")
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8), 132) == 96
    assert wgsp.wgsd_sk_ctas(_sk_kw(24576, 4096, fp8), 132) == 132
    for bad in ("-2", "65", "x"):
        env_switch("SPENSE_WGSD_SK_SPLIT", bad)
        with pytest.raises(DeviceError, match="SPENSE_WGSD_SK_SPLIT"):
            wgsp.wgsd_sk_split()


@pytest.mark.skipif(not __import__("shutil").which("nvcc"), reason="needs nvcc")
def test_stream_k_split_covers_every_step_once(tmp_path):
    """The stream-K decode form's split of a layer (SkGeo in csrc/spense_wgsd_parts.cuh), walked on the host as
    the kernel walks it over 10,044 layer shapes, grids and weight types (bf16 and e4m3 steps;
    benchmarks/wgsd_geometry_check.cu): every (row block, K step) streamed by exactly one CTA, no CTA
    without steps, each split block's partial sums written to the slots its last arrival reads.  Host code
    only: no GPU."""
    root = os.path.join(os.path.dirname(__file__), "..")
    exe = str(tmp_path / "wgsd_geometry")
    r = subprocess.run(["nvcc", "-std=c++17", "-I", os.path.join(root, "src", "spense", "runtime", "csrc"),
                        os.path.join(root, "benchmarks", "wgsd_geometry_check.cu"), "-o", exe],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "fails 0" in r.stdout, r.stdout[-2000:]


@pytest.mark.skipif(not __import__("shutil").which("nvcc"), reason="needs nvcc")
def test_e4m3_wgmma_probes_build(tmp_path):
    """The device probes of sparse e4m3 on sm_90a build against the runtime's headers: the SASS probe
    (benchmarks/sass_probe_e4m3_mmasp.cu) and the fragment / metadata probe of the e4m3 wgmma.sp
    (benchmarks/wgsd_e4m3_probe.cu, run on the device).  Host compile only: no GPU."""
    root = os.path.join(os.path.dirname(__file__), "..")
    for name in ("sass_probe_e4m3_mmasp.cu", "wgsd_e4m3_probe.cu"):
        r = subprocess.run(["nvcc", "-std=c++17", "-O2", "-gencode=arch=compute_90a,code=sm_90a", "-I",
                            os.path.join(root, "src", "spense", "runtime", "csrc"),
                            os.path.join(root, "benchmarks", name), "-o", str(tmp_path / (name + ".out"))]
                           + (["-c"] if name.startswith("sass") else []), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (name, r.stderr[-2000:])


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
def test_gpu_stream_k_variants_give_the_measured_forms_bits(env_switch, kind):
    """The stream-K variants on tiles of 64 tokens (SPENSE_WGSD_EXP 17, 2, 3, 7, 9, 15: the cheaper epilogue,
    the early weight boxes, launched dependent, fewer registers at launch; 1027 with two early slots only; 49
    with two wgmma groups in flight)
    give the bits of variant 0 (they add the same parts in the same order) at M = 1, 16, 33, 64, within
    rounding of the float64 reference; the default 1 (tiles of 16 or 32 tokens where M fits) too, within
    rounding, the same bits on every call, and 33 (1 with two groups in flight) the bits of 1; 65 and 97 (1 and
    33 with four accumulator chains, added in another order) within rounding, the same bits on every call."""
    m, wref, gen = compacted(kind, 13)
    K = m.in_features
    env_switch("SPENSE_WGSD_SK", "1")
    for M in (1, 16, 33, 64):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ wref.T
        outs = {}
        for v in ("0", "1", "2", "3", "7", "9", "15", "17", "33", "65", "97", "1027", "49"):
            env_switch("SPENSE_WGSD_EXP", v)
            outs[v] = wgsp.wgsp_forward(m._kernel, x, decode=True)
            assert outs[v] is not None, (kind, M, v)
            if v in ("65", "97"):
                assert torch.equal(wgsp.wgsp_forward(m._kernel, x, decode=True), outs[v]), (kind, M, v)
        for v in ("0", "1", "65", "97"):
            assert ((outs[v].double() - ref).norm() / ref.norm()).item() <= 1e-2, (kind, M, v)
        assert torch.equal(wgsp.wgsp_forward(m._kernel, x, decode=True), outs["49"])  # (the switch is at 49)
        assert torch.equal(outs["33"], outs["1"]), (kind, M)
        env_switch("SPENSE_WGSD_EXP", "1")
        assert torch.equal(wgsp.wgsp_forward(m._kernel, x, decode=True), outs["1"]), (kind, M)
        for v, y in outs.items():
            if v not in ("1", "33", "65", "97") or M > 32 and v in ("1", "33"):
                assert torch.equal(y, outs["0"]), (kind, M, v)


@pytest.mark.gpu
@sm90
def test_gpu_timing_only_variants_run_to_their_end(env_switch):
    """The stream-K variants for timing only (SPENSE_WGSD_EXP 129: no MMA, 257: e4m3 not widened) run to
    their end at M = 1 and 16 (no slot freed twice, no wait left hanging), 129 giving zeros; above M = 16
    they decline (None)."""
    m, _, gen = compacted("blocks", 15)
    gen8 = torch.Generator().manual_seed(16)
    w, lay = prefill_weight("blocks", 1024, 4096, gen8)
    k8 = SpenseLinear(pack(w.to("cuda", torch.bfloat16), lay, fp8=True), backend="auto").compact()._kernel
    env_switch("SPENSE_WGSD_SK", "1")
    for kw, K in ((m._kernel, m.in_features), (k8, 4096)):
        for M in (1, 16, 17):
            x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
            for v in ("129", "257"):
                env_switch("SPENSE_WGSD_EXP", v)
                y = wgsp.wgsp_forward(kw, x, decode=True)
                if M > 16:
                    assert y is None, (v, M)
                    continue
                torch.cuda.synchronize()
                assert y is not None and y.shape == (M, kw.n_out), (v, M)
                if v == "129":
                    assert not y.any(), M


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
def test_gpu_fp8_stream_k_matches_reference(env_switch, kind):
    """A compacted FP8 layer (e4m3 weights, per-row scales) at 25 % dense through the stream-K decode form at
    M = 1, 7, 16, 32, 33, 64: within bf16 rounding of the float64 reference of its dequantised weights, the same
    bits on a second call (variants 65, slots of one K step, 513 and 2049 too; 1 and 513 take slots of two
    steps at M <= 16, 2049 the same with x in f16 and e4m3 widened to f16, within rounding too, and at M <= 32
    under SPENSE_WGSD_F16_MAX_M=32, the default; 2625 there too), and what the layer itself runs from
    SPENSE_WGSD_MIN_M tokens by default (below it the mma.sp kernel, within rounding); the other decode form and
    prefill decline FP8 (None: the caller's path)."""
    gen = torch.Generator().manual_seed(14)
    w, lay = prefill_weight(kind, 1024, 4096, gen)
    p = pack(w.to("cuda", torch.bfloat16), lay, fp8=True)
    wref = unpack(p, dtype=torch.float32).double()
    m = SpenseLinear(p, backend="auto").compact()
    assert m._kernel.fp8
    env_switch("SPENSE_WGSD_MIN_M", "16")
    env_switch("SPENSE_WGSD_MIN_M_LARGE", "0")
    for M in (1, 7, 16, 32, 33, 64):
        x = torch.randn(M, 4096, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ wref.T
        direct = wgsp.wgsp_forward(m._kernel, x, decode=True)
        assert direct is not None, (kind, M)
        e = ((direct.double() - ref).norm() / ref.norm()).item()
        assert e <= 1e-2, (kind, M, e)
        assert torch.equal(wgsp.wgsp_forward(m._kernel, x, decode=True), direct), (kind, M)
        # slots of one step; of two (M <= 16, the default's); 2049: x in f16 there, and at M <= 32 with
        # SPENSE_WGSD_F16_MAX_M=32 (the default: kernel 2625 on tiles of 32; 16: tiles of 16 only)
        for v, f16_max in (("65", "16"), ("513", "16"), ("2049", "16"), ("2049", "32"), ("2625", "32")):
            env_switch("SPENSE_WGSD_EXP", v)  # the same bits on every call
            env_switch("SPENSE_WGSD_F16_MAX_M", f16_max)
            yv = wgsp.wgsp_forward(m._kernel, x, decode=True)
            assert ((yv.double() - ref).norm() / ref.norm()).item() <= 1e-2, (kind, M, v)
            assert torch.equal(wgsp.wgsp_forward(m._kernel, x, decode=True), yv), (kind, M, v)
        env_switch("SPENSE_WGSD_F16_MAX_M", None)
        env_switch("SPENSE_WGSD_EXP", None)  # the defaults, as `direct` ran
        assert wgsp.wgsp_forward(m._kernel, x, decode=True, stream_k=False) is not None  # FP8: stream-K anyway
        assert wgsp.wgsp_forward(m._kernel, x) is None  # no FP8 prefill form
        y = m(x)
        assert ((y.double() - ref).norm() / ref.norm()).item() <= 1e-2, (kind, M)
        if M >= 16:
            assert torch.equal(y, direct), (kind, M)


@pytest.mark.gpu
@sm90
def test_gpu_f16_x_gives_the_bits_of_bf16_x(env_switch):
    """Variant 2049 (x in f16, e4m3 taken as f16) against the form in bf16 on the same accumulator chains: 1 at
    M = 1, 9, 16 (the same pair form), 65 at M = 17, 32 (tiles of 32: slots of one K step, four chains, a step's
    chains set by its parity as in 2049's slots of two), where no |x| is below 2^-6 (but zeros): x's f16
    operand holds x * 2^-8 exactly, every product is exact in fp32 either way and the 2^-8 comes back as a power
    of two in the epilogue, so the outputs are the same bits; on x with tiny values, within rounding of each
    other.  Also the FP8 dense rows (``sk``'s layout).  (Against 1 at M = 17, one chain, the bits differ: t.)"""
    from spense.runtime.fp8 import quantize_weight

    gen = torch.Generator().manual_seed(17)
    w, lay = prefill_weight("blocks", 1024, 4096, gen)
    kws = [SpenseLinear(pack(w.to("cuda", torch.bfloat16), lay, fp8=True), backend="auto").compact()._kernel,
           wgsp.dense_fp8_kernel_weights(*quantize_weight(torch.randn(1000, 4096, generator=gen).cuda()))]
    env_switch("SPENSE_WGSD_SK", "1")
    env_switch("SPENSE_WGSD_F16_MAX_M", "32")
    for kw in kws:
        for M in (1, 9, 16, 17, 32):
            x = torch.randn(M, 4096, generator=gen)
            x = torch.where(x.abs() < 2.0 ** -6, torch.zeros_like(x), x).to("cuda", torch.bfloat16)
            tiny = x.clone()
            tiny[:, ::5] *= 2.0 ** -12
            outs, bf = {}, "1" if M <= 16 else "65"
            for v in (bf, "2049"):
                env_switch("SPENSE_WGSD_EXP", v)
                outs[v] = (wgsp.wgsp_forward(kw, x, decode=True), wgsp.wgsp_forward(kw, tiny, decode=True))
            assert torch.equal(outs[bf][0], outs["2049"][0]), M
            a, b = outs[bf][1].double(), outs["2049"][1].double()
            assert ((a - b).norm() / a.norm()).item() <= 1e-3, M


def test_dense_fp8_kernel_weights_layout():
    """An FP8 dense weight as the stream-K form's dense rows: no 2:4 region, rows padded to 128 with zeros and
    output row -1, K steps of 64 columns in order, the e4m3 bytes back as they were (the kernel layout's own
    inverse), the scales as float32."""
    from spense.runtime.fp8 import quantize_weight
    from spense.runtime.mmasp import _unfrag

    wq, sw = quantize_weight(torch.randn(200, 192, generator=torch.Generator().manual_seed(5)))
    kw = wgsp.dense_fp8_kernel_weights(wq, sw)
    assert kw.fp8 and kw.rows_sparse == 0 and kw.Ss == 0 and kw.SdA == 0 and kw.rows_dense == 256
    assert kw.SdB == 3 and kw.dblk.tolist() == [0, 64, 128] and kw.n_out == 200
    assert kw.out_row[:200].tolist() == list(range(200)) and (kw.out_row[200:] == -1).all()
    back = _unfrag(kw.dv, 256, 192, 4, fp8=True)
    assert torch.equal(back[:200], wq.view(torch.uint8)) and not back[200:].any()
    assert kw.wscale.dtype == torch.float32 and torch.equal(kw.wscale, sw.float())
    assert not wgsp.wgsp_layer_applies(kw, 192, decode=True)  # off the GPU: not served


@pytest.mark.gpu
@sm90
def test_gpu_dense_fp8_through_stream_k_matches_reference(env_switch):
    """The FP8 dense baseline's CUDA kind (the weight as dense rows through the stream-K form): within bf16
    rounding of the float64 product with the dequantised weight at M = 1, 16, 32, 64, on a shape with rows to
    pad (1000 x 4096), by default and with x in f16 (variant 2049, up to M = 32)."""
    from spense.runtime.fp8 import quantize_weight

    gen = torch.Generator().manual_seed(15)
    wq, sw = quantize_weight(torch.randn(1000, 4096, generator=gen).cuda())
    kw = wgsp.dense_fp8_kernel_weights(wq, sw)
    wd = wq.double() * sw.double()[:, None]
    env_switch("SPENSE_WGSD_F16_MAX_M", "32")
    for M in (1, 16, 32, 64):
        x = torch.randn(M, 4096, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ wd.T
        for v in ("1", "2049"):  # 2049: x in f16, e4m3 taken as f16, at M <= 32 (SPENSE_WGSD_F16_MAX_M=32)
            env_switch("SPENSE_WGSD_EXP", v)
            y = wgsp.wgsp_forward(kw, x, decode=True)
            assert y is not None and y.shape == (M, 1000)
            assert ((y.double() - ref).norm() / ref.norm()).item() <= 1e-2, (M, v)


# a stream-K variant past 4095 given straight to the extension (run in a child process; also by
# benchmarks/run_fp8_sk.sh under gdb)
REFUSE_CODE = ("import torch\n"
               "from spense.runtime import mmasp, wgsp\n"
               "from test_wgsp import compacted\n"
               "m, _, _ = compacted('blocks', 3)\n"
               "kw = m._kernel\n"
               "x = torch.randn(4, m.in_features, device='cuda').to(torch.bfloat16)\n"
               "y = torch.empty(4, kw.n_out, dtype=torch.bfloat16, device='cuda')\n"
               "ws, cnt = wgsp.sk_workspace(x.device)\n"
               "try:\n"
               "    mmasp.load_extension().spense_wgsp(y, kw.sv, kw.sm, kw.dv, x, kw.sblk, kw.dblk, kw.out_row,\n"
               "        kw.rows_sparse // 16, kw.rows_dense // 16, kw.Ss, kw.SdA, kw.SdB, 3, ws, cnt, 4099,\n"
               "        kw.wscale, 0)\n"
               "except RuntimeError as e:\n"
               "    print('REFUSED', 'must be 0..4095' in str(e))\n")


@pytest.mark.gpu
@sm90
def test_gpu_extension_refuses_a_bad_variant_with_an_error():
    """The extension's own checks raise (RuntimeError naming the bound), not crash the process: a stream-K
    variant past 4095 given straight to spense_wgsp, in a child process so that a crash fails only this test."""
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(here, "..", "src"), here]))
    r = subprocess.run(["python3", "-X", "faulthandler", "-u", "-c", REFUSE_CODE], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0 and "REFUSED True" in r.stdout, (r.returncode, r.stdout[-300:], r.stderr[-800:])
