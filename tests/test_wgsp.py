"""The prefill GEMM on sparse warpgroup MMA (``spense.runtime.wgsp``): its switches, where it applies, the
fallback everywhere else, and on an sm_90 GPU (``gpu``) its forms' outputs against the float64 reference."""

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


# the read-once switches of spense.runtime.wgsp that env_switch sets, each with the function that reads it
SWITCHES = {"SPENSE_WGSP_CLUSTER": wgsp.wgsp_cluster, "SPENSE_WGSP_PERSIST": wgsp.wgsp_persist,
            "SPENSE_WGSP_TAIL": wgsp.wgsp_tail, "SPENSE_WGSP_NT": wgsp.wgsp_nt, "SPENSE_WGSD_MIN_M": wgsp.wgsd_min_m,
            "SPENSE_WGSD_MIN_M_LARGE": wgsp.wgsd_min_m_large, "SPENSE_WGSD_SK": wgsp.wgsd_stream_k,
            "SPENSE_WGSD_EXP": wgsp.wgsd_exp, "SPENSE_WGSD_SK_MIN_NK": wgsp.wgsd_sk_min_nk,
            "SPENSE_WGSD_F16_MAX_M": wgsp.wgsd_f16_max_m, "SPENSE_WGSD_SK_SPLIT": wgsp.wgsd_sk_split,
            "SPENSE_WGSD_CLUSTER_MAX_K": wgsp.wgsd_cluster_max_k, "SPENSE_WGSD_CL_PDL": wgsp.wgsd_cl_pdl}


@pytest.fixture
def env_switch(monkeypatch, request):
    """Sets one of the read-once switches of ``SWITCHES`` for one test, its cache cleared then and after the test
    (test_wgsp_stream_k shares it)."""

    def set_(name: str, v: str | None):
        if v is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, v)
        SWITCHES[name].cache_clear()
    request.addfinalizer(lambda: [f.cache_clear() for f in SWITCHES.values()])
    return set_


def test_cluster_and_decode_form_switches(env_switch):
    """The cluster and the persistent prefill are off by default, the tail split on, the decode form serves M = 17..64
    (large layers from M = 9) and picks stream-K by the layer (2), with the stream-K epilogue measured fastest in the
    engine and x in f16 for e4m3 with the split blocks' count by one acq_rel atomic, launched dependent, each ring slot
    drained before the next slot's A is read on tiles of 32 tokens (104449); the cluster form launched dependent too;
    SPENSE_WGSP_CLUSTER, SPENSE_WGSP_TAIL and SPENSE_WGSD_CL_PDL take 0 or 1, SPENSE_WGSD_SK and SPENSE_WGSP_PERSIST
    0..2, SPENSE_WGSD_MIN_M(_LARGE) 0..64 (the decode form's 64 tokens per work block), SPENSE_WGSD_EXP 0..131071 and
    SPENSE_WGSD_SK_MIN_NK >= 1, SPENSE_WGSP_NT 128 (the default) or 256; anything else is refused in one line."""
    names = ("SPENSE_WGSP_CLUSTER", "SPENSE_WGSP_PERSIST", "SPENSE_WGSP_TAIL", "SPENSE_WGSP_NT", "SPENSE_WGSD_MIN_M",
             "SPENSE_WGSD_MIN_M_LARGE", "SPENSE_WGSD_SK", "SPENSE_WGSD_EXP", "SPENSE_WGSD_SK_MIN_NK",
             "SPENSE_WGSD_CL_PDL")
    for name in names:
        env_switch(name, None)
    assert wgsp.wgsp_cluster() is False and wgsp.wgsd_min_m() == 17 and wgsp.wgsd_stream_k() == 2
    assert wgsp.wgsd_exp() == 104449 and wgsp.wgsd_min_m_large() == 9 and wgsp.wgsd_sk_min_nk() == wgsp.SK_MIN_NK
    assert wgsp.wgsd_cl_pdl() is True and wgsp.wgsp_persist() == 0 and wgsp.wgsp_tail() is True
    assert wgsp.wgsp_nt() == 128
    env_switch("SPENSE_WGSP_NT", "256")
    assert wgsp.wgsp_nt() == 256
    env_switch("SPENSE_WGSP_PERSIST", "2")
    env_switch("SPENSE_WGSP_TAIL", "0")
    assert wgsp.wgsp_persist() == 2 and wgsp.wgsp_tail() is False
    env_switch("SPENSE_WGSD_CL_PDL", "0")
    assert wgsp.wgsd_cl_pdl() is False
    env_switch("SPENSE_WGSD_EXP", "7")
    assert wgsp.wgsd_exp() == 7
    env_switch("SPENSE_WGSP_CLUSTER", "1")
    env_switch("SPENSE_WGSD_MIN_M", "1")
    env_switch("SPENSE_WGSD_SK", "0")
    assert wgsp.wgsp_cluster() is True and wgsp.wgsd_min_m() == 1 and wgsp.wgsd_stream_k() == 0
    for name, bad in (("SPENSE_WGSP_CLUSTER", "2"), ("SPENSE_WGSP_PERSIST", "3"), ("SPENSE_WGSP_TAIL", "2"),
                      ("SPENSE_WGSP_NT", "192"), ("SPENSE_WGSP_NT", "512"), ("SPENSE_WGSP_NT", "64"),
                      ("SPENSE_WGSD_MIN_M", "65"), ("SPENSE_WGSD_MIN_M", "x"),
                      ("SPENSE_WGSD_MIN_M_LARGE", "-1"), ("SPENSE_WGSD_SK", "3"), ("SPENSE_WGSD_EXP", "131072"),
                      ("SPENSE_WGSD_SK_MIN_NK", "0"), ("SPENSE_WGSD_CL_PDL", "2")):
        env_switch(name, bad)
        with pytest.raises(DeviceError, match=name):
            SWITCHES[name]()


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


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
@pytest.mark.parametrize("persist", ["1", "2"])
def test_gpu_wgsp_persistent_prefill_gives_the_plain_forms_bits(env_switch, kind, persist):
    """The persistent prefill (SPENSE_WGSP_PERSIST 1: the plain form's CTAs, 2: CTAs of 8 row tiles) gives the
    plain form's bits at M = 300 (a ragged token tile), 2048 and 8192 (more tiles than SMs, so each CTA walks
    several, across both kinds of row tile with dense rows), within bf16 rounding of the float64 reference."""
    m, wref, gen = compacted(kind, 13)
    K = m.in_features
    for M in (300, 2048, 8192):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        env_switch("SPENSE_WGSP_PERSIST", "0")
        plain = wgsp.wgsp_forward(m._kernel, x)
        env_switch("SPENSE_WGSP_PERSIST", persist)
        walked = wgsp.wgsp_forward(m._kernel, x)
        assert plain is not None and walked is not None, (kind, M)
        assert torch.equal(walked, plain), (kind, persist, M)
        ref = x.double() @ wref.T
        assert ((walked.double() - ref).norm() / ref.norm()).item() <= 1e-2, (kind, persist, M)


@pytest.mark.gpu
@sm90
def test_gpu_wgsp_tail_split_gives_the_plain_forms_bits(env_switch):
    """The tail split (SPENSE_WGSP_TAIL=1) gives the plain form's bits: at M = 5100 a 1024-row layer of 2:4 rows is
    40 token tiles x 4 row blocks = 160 CTAs of 16 row tiles, 1.2 waves of 132 SMs, so its last row block goes to a
    second launch of 80 CTAs of 8 (two launches on a GPU of 132 SMs); at M = 300 (12 CTAs) it is not split."""
    from torch.profiler import ProfilerActivity, profile

    m, wref, gen = compacted("blocks", 14)
    for M, split in ((300, False), (5100, torch.cuda.get_device_properties(0).multi_processor_count == 132)):
        x = torch.randn(M, m.in_features, generator=gen).to("cuda", torch.bfloat16)
        env_switch("SPENSE_WGSP_TAIL", "0")
        plain = wgsp.wgsp_forward(m._kernel, x)
        env_switch("SPENSE_WGSP_TAIL", "1")
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            tail = wgsp.wgsp_forward(m._kernel, x)
            torch.cuda.synchronize()
        launches = sum(e.count for e in prof.key_averages() if "spense_wgsp_ws_kernel" in e.key)
        assert plain is not None and tail is not None and torch.equal(tail, plain), M
        assert launches == (2 if split else 1), (M, launches)
        ref = x.double() @ wref.T
        assert ((tail.double() - ref).norm() / ref.norm()).item() <= 1e-2, M


@pytest.mark.gpu
@sm90
@pytest.mark.parametrize("kind", ["blocks", "rows"])
def test_gpu_wgsp_256_token_ctas_give_the_plain_forms_bits(env_switch, kind):
    """Prefill on CTAs of 8 row tiles and 256 tokens (SPENSE_WGSP_NT=256, m64n256 wgmmas) gives the plain form's bits:
    the same sums in the same order, at M = 65 and 300 (a partial token tile), 2048 and 4100 (16 + a partial one),
    within bf16 rounding of the float64 reference."""
    m, wref, gen = compacted(kind, 15)
    env_switch("SPENSE_WGSP_TAIL", "0")
    for M in (65, 300, 2048, 4100):
        x = torch.randn(M, m.in_features, generator=gen).to("cuda", torch.bfloat16)
        env_switch("SPENSE_WGSP_NT", "128")
        plain = wgsp.wgsp_forward(m._kernel, x)
        env_switch("SPENSE_WGSP_NT", "256")
        wide = wgsp.wgsp_forward(m._kernel, x)
        assert plain is not None and wide is not None, (kind, M)
        assert torch.equal(wide, plain), (kind, M)
        ref = x.double() @ wref.T
        assert ((wide.double() - ref).norm() / ref.norm()).item() <= 1e-2, (kind, M)
