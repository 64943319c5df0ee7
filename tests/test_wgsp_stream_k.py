"""The stream-K decode form of ``spense.runtime.wgsp``: its grid (whole shares), the host walk of its split over
CTAs, its device probes' builds, and on an sm_90 GPU (``gpu``) its variants, e4m3 weights, x in f16 and the FP8
dense rows against the float64 reference, and the extension's refusal of a bad variant."""

import os
import subprocess
from types import SimpleNamespace

import pytest
import torch

from spense.errors import DeviceError
from spense.format import pack, unpack
from spense.runtime import SpenseLinear, wgsp

import test_wgsp
from test_mmasp import prefill_weight
from test_wgsp import compacted, sm90

env_switch = test_wgsp.env_switch  # the read-once switches' fixture, shared with test_wgsp


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
    """Under -1 (bf16's default) the stream-K form's CTAs split each row block into equal shares or take whole
    blocks: every CTA's units (SkGeo::u0, c T / G) start and end inside one block or on block bounds, on 132 SMs
    and on fewer; past two blocks per SM (32B.gate_up) one CTA per SM.  SPENSE_WGSD_SK_SPLIT=0 is one per SM,
    k >= 1 k CTAs per block (at most the SMs); blocks of two sizes (dense rows) keep one per SM."""
    env_switch("SPENSE_WGSD_SK_SPLIT", "-1")
    for name, (n, k) in QWEN3_SHAPES.items():
        kw = _sk_kw(n, k, fp8)
        blocks, per = n // 128, wgsp.sk_units(kw) // (n // 128)
        for n_sm in (132, 114, 78):
            g = wgsp.wgsd_sk_ctas(kw, n_sm)
            if blocks > 2 * min(n_sm, wgsp.sk_units(kw) // wgsp.SK_CTA_UNITS):
                assert g == 0, (name, n_sm)
                continue
            assert 0 < g <= min(n_sm, wgsp.sk_units(kw) // wgsp.SK_CTA_UNITS), (name, n_sm, g)
            t = blocks * per
            for c in range(g):  # the share's first and last units lie in one block, or it is whole blocks
                u0, u1 = c * t // g, (c + 1) * t // g
                assert u0 // per == (u1 - 1) // per or (u0 % per == 0 and u1 % per == 0), (name, n_sm, g, c)
            assert g >= min(n_sm, wgsp.sk_units(kw) // wgsp.SK_CTA_UNITS) // 2, (name, n_sm, g)  # at least half the CTAs
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8), 132) == 128  # 8B.o: four CTAs per block
    assert wgsp.wgsd_sk_ctas(_sk_kw(24576, 4096, fp8), 132) == 96  # 8B.gate_up: two blocks per CTA
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8, dense_rows=1024), 132) == 0
    o = _sk_kw(4096, 4096, fp8)
    assert [wgsp.wgsd_sk_ctas(o, 132, k) for k in (-1, 0, 1, 3, 5)] == [128, 0, 32, 96, 132]
    env_switch("SPENSE_WGSD_SK_SPLIT", "0")
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8), 132) == 0
    env_switch("SPENSE_WGSD_SK_SPLIT", "3")
    assert wgsp.wgsd_sk_ctas(_sk_kw(4096, 4096, fp8), 132) == 96
    assert wgsp.wgsd_sk_ctas(_sk_kw(24576, 4096, fp8), 132) == 132
    for bad in ("-4", "65", "x"):
        env_switch("SPENSE_WGSD_SK_SPLIT", bad)
        with pytest.raises(DeviceError, match="SPENSE_WGSD_SK_SPLIT"):
            wgsp.wgsd_sk_split()


@pytest.mark.parametrize("fp8", [True, False])
def test_stream_k_three_halves_grid(env_switch, fp8):
    """SPENSE_WGSD_SK_SPLIT=-2: where whole shares would give a CTA two blocks, three blocks go to two CTAs
    (8B.gate_up: 128 CTAs for 192 blocks): CTA 2j's share is block 3j and the first half of 3j+1, CTA 2j+1's
    the rest of 3j+1 and block 3j+2, so no block has more than two CTAs and a CTA at most one part of a block;
    elsewhere the grid of -1.  By default (-3) e4m3 weights take it, bf16 ones -1."""
    for name, (n, k) in QWEN3_SHAPES.items():
        kw = _sk_kw(n, k, fp8)
        g1, g2 = wgsp.wgsd_sk_ctas(kw, 132, -1), wgsp.wgsd_sk_ctas(kw, 132, -2)
        assert g2 == (128 if name == "8B.gate_up" else g1), (name, g1, g2)
    kw = _sk_kw(24576, 4096, fp8)
    blocks, per = 192, wgsp.sk_units(kw) // 192
    t = blocks * per
    cover = [[] for _ in range(blocks)]
    for c in range(128):
        u0, u1 = c * t // 128, (c + 1) * t // 128
        for b in range(u0 // per, (u1 - 1) // per + 1):
            cover[b].append(c)
        whole = [b for b in range(u0 // per, (u1 - 1) // per + 1) if u0 <= b * per and (b + 1) * per <= u1]
        assert len(whole) == 1 and whole[0] == 3 * (c // 2) + 2 * (c % 2), c
    assert all(len(cs) == (2 if b % 3 == 1 else 1) for b, cs in enumerate(cover))
    env_switch("SPENSE_WGSD_SK_SPLIT", "-2")
    assert wgsp.wgsd_sk_split() == -2 and wgsp.wgsd_sk_ctas(kw, 132) == 128
    assert wgsp.wgsd_sk_ctas(_sk_kw(24576, 4096, fp8), 100) == 96  # 2 B / 3 > G: two whole blocks a CTA
    env_switch("SPENSE_WGSD_SK_SPLIT", None)  # the default, -3: -2 for e4m3 weights, -1 for bf16
    assert wgsp.wgsd_sk_split() == -3 and wgsp.wgsd_sk_ctas(kw, 132) == (128 if fp8 else 96)


def test_cluster_bit_only_on_grids_of_few_ctas_a_block(env_switch):
    """Variant bit 8192 reaches the extension only where the grid gives every row block k CTAs of its own
    with k <= SPENSE_WGSD_CLUSTER_MAX_K (default 2: 8B.qkv's 96 CTAs for 48 blocks, not 8B.o's four a block),
    or two CTAs to three blocks; the other bits pass as they are."""
    env_switch("SPENSE_WGSD_CLUSTER_MAX_K", None)
    env_switch("SPENSE_WGSD_EXP", "14337")
    qkv, o = _sk_kw(6144, 4096), _sk_kw(4096, 4096)
    assert wgsp.wgsd_cluster_max_k() == 2
    assert wgsp.wgsd_variant(qkv, 96) == 14337 and wgsp.wgsd_variant(o, 128) == 6145
    assert wgsp.wgsd_variant(qkv, 0) == 6145 and wgsp.wgsd_variant(qkv, 48) == 6145  # one CTA a block: none
    assert wgsp.wgsd_variant(qkv, 100) == 6145  # not a whole number of CTAs a block
    assert wgsp.wgsd_variant(_sk_kw(24576, 4096), 128) == 14337  # 8B.gate_up under -2: two CTAs to three blocks
    env_switch("SPENSE_WGSD_CLUSTER_MAX_K", "8")
    assert wgsp.wgsd_variant(o, 128) == 14337
    env_switch("SPENSE_WGSD_EXP", "6145")
    assert wgsp.wgsd_variant(qkv, 96) == 6145
    for bad in ("1", "9", "x"):
        env_switch("SPENSE_WGSD_CLUSTER_MAX_K", bad)
        with pytest.raises(DeviceError, match="SPENSE_WGSD_CLUSTER_MAX_K"):
            wgsp.wgsd_cluster_max_k()


@pytest.mark.skipif(not __import__("shutil").which("nvcc"), reason="needs nvcc")
def test_stream_k_split_covers_every_step_once(tmp_path):
    """The stream-K decode form's split of a layer (SkGeo in csrc/spense_wgsd_parts.cuh), walked on the host as
    the kernel walks it over 11,160 layer shapes, grids and weight types (bf16 and e4m3 steps;
    benchmarks/wgsd_geometry_check.cu): every (row block, K step) streamed by exactly one CTA, no CTA
    without steps, each split block's partial sums written to the slots its last arrival reads; where variant
    bit 8192 launches clusters (wsd_cluster_k), block b's CTAs are exactly cluster b.  Host code only: no GPU."""
    root = os.path.join(os.path.dirname(__file__), "..")
    exe = str(tmp_path / "wgsd_geometry")
    r = subprocess.run(["nvcc", "-std=c++17", "-I", os.path.join(root, "src", "spense", "runtime", "csrc"),
                        os.path.join(root, "benchmarks", "wgsd_geometry_check.cu"), "-o", exe],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "fails 0" in r.stdout, r.stdout[-2000:]
    assert int(r.stdout.split("clusters")[-1].split()[0]) > 100, r.stdout[-300:]  # bit 8192's grids walked too
    assert int(r.stdout.split("pairs")[-1].split()[0]) > 0, r.stdout[-300:]  # and its clusters over three blocks


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
        for v, f16_max in (("65", "16"), ("513", "16"), ("2049", "16"), ("2049", "32"), ("2625", "32"),
                           ("6145", "32"), ("14337", "32")):
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


def _spense_layers(gen, n: int = 1024, k: int = 4096, fp8s=(False, True)):
    """(fp8, kernel weights, float64 reference) of one n x k Spense layer (1024 x 4096: 8 row blocks; dense column
    blocks), compacted in bf16 and in e4m3 (``fp8s``), on the GPU."""
    w, lay = prefill_weight("blocks", n, k, gen)
    for fp8 in fp8s:
        p = pack(w.to("cuda", torch.bfloat16), lay, fp8=fp8)
        yield fp8, SpenseLinear(p, backend="auto").compact()._kernel, unpack(p, dtype=torch.float32).double()


@pytest.mark.gpu
@sm90
def test_gpu_stream_k_grids_match_reference_and_trace(env_switch):
    """Every grid the stream-K form may be given (SPENSE_WGSD_SK_SPLIT 0: one CTA per SM, -1: whole shares, k per
    row block down to 16 units a CTA) gives the layer within rounding of the float64 reference, bf16 and e4m3,
    at M = 1, 16, 32; and a launch given a trace tensor records four clocks in order for each of its CTAs."""
    gen = torch.Generator().manual_seed(23)
    for fp8, kw, ref in _spense_layers(gen):
        for split in ("0", "-1", "1", "3", "16"):
            env_switch("SPENSE_WGSD_SK_SPLIT", split)
            for M in (1, 16, 32):
                x = torch.randn(M, 4096, generator=gen).to("cuda", torch.bfloat16)
                y = wgsp.wgsp_forward(kw, x, decode=True, stream_k=True)
                r = x.double() @ ref.T
                assert ((y.double() - r).norm() / r.norm()).item() <= 1e-2, (fp8, split, M)
        n_sm = torch.cuda.get_device_properties(0).multi_processor_count
        g = wgsp.wgsd_sk_ctas(kw, n_sm)  # split 16: 128 CTAs of 23 units
        trace = torch.zeros(4 * n_sm, dtype=torch.int64, device="cuda")
        assert wgsp.wgsp_forward(kw, x, decode=True, stream_k=True, trace=trace) is not None
        t = trace.view(-1, 4).cpu()
        assert int((t[:, 0] > 0).sum()) == g and not t[g:].any(), (fp8, g)
        assert (t[:g, 1:] >= t[:g, :-1]).all(), fp8
    env_switch("SPENSE_WGSD_SK_SPLIT", None)


def _same_bits(env_switch, kw, ref, M: int, gen, variants: tuple[str, str], split: int | None, tag,
               switch: str = "SPENSE_WGSD_EXP", stream_k: bool = True) -> None:
    """The decode form of ``kw`` (stream-K on ``split``'s grid, or the cluster form: ``stream_k`` False) gives the
    same y under both ``variants`` of ``switch``, within rounding of the float64 reference ``ref``, for M random
    tokens."""
    x = torch.randn(M, ref.shape[1], generator=gen).to("cuda", torch.bfloat16)
    ys = []
    for v in variants:
        env_switch(switch, v)
        ys.append(wgsp.wgsp_forward(kw, x, decode=True, stream_k=stream_k, split=split))
    r = x.double() @ ref.T
    assert ys[0] is not None and torch.equal(ys[0], ys[1]), tag
    assert ((ys[1].double() - r).norm() / r.norm()).item() <= 1e-2, tag
    env_switch(switch, None)


@pytest.mark.gpu
@sm90
def test_gpu_cluster_sums_give_the_workspace_bits(env_switch):
    """Variant bit 8192 (the CTAs of each row block launched as one cluster, their parts added through
    distributed shared memory) gives the bits of the workspace's sums (6145, bf16 4097: both add the parts in CTA
    order from zero), bf16 and e4m3, at M = 1, 16, 32, on grids of 2, 4 and 8 CTAs a block; where the grid does
    not give every block CTAs of its own (split 0: one CTA per SM) the kernel without the bit runs.  Clusters
    of up to 8 CTAs asked (SPENSE_WGSD_CLUSTER_MAX_K; the default takes them up to 2).  The same for clusters
    of two CTAs over three blocks (split -2), the second CTA walking its blocks last to first."""
    env_switch("SPENSE_WGSD_CLUSTER_MAX_K", "8")
    gen = torch.Generator().manual_seed(29)
    for fp8, kw, ref in _spense_layers(gen):
        for split in (2, 4, 8, 0):
            for M in (1, 16, 32):
                _same_bits(env_switch, kw, ref, M, gen, ("6145", "14337"), split, (fp8, split, M))
    # clusters of two CTAs over three blocks (SPENSE_WGSD_SK_SPLIT=-2 where whole shares give a CTA two blocks):
    # 24 blocks on 16 CTAs, short rows so that the units allow no more (e4m3 512 columns, bf16 256)
    for fp8, kw, ref in [*_spense_layers(gen, 3072, 512, (True,)), *_spense_layers(gen, 3072, 256, (False,))]:
        assert wgsp.wgsd_sk_ctas(kw, wgsp._sm_count(torch.device("cuda")), -2) == 16, fp8
        env_switch("SPENSE_WGSD_EXP", "14337")
        assert wgsp.wgsd_variant(kw, 16) == 14337, fp8  # the bit reaches the extension on this grid
        for M in (1, 16, 32):
            _same_bits(env_switch, kw, ref, M, gen, ("6145", "14337"), -2, (fp8, M))


@pytest.mark.gpu
@sm90
def test_gpu_drained_slots_give_the_same_bits(env_switch):
    """Variant bit 65536 (tiles of 32 tokens: each ring slot's MMAs waited for before the next slot's A is read, so
    that ptxas need not serialize the wgmmas) gives the bits of the form without it, the same MMAs in the same
    order: 38913 against the default 104449, 6145 against 71681, the clusters' 14337 against 79873, on grids of 2
    and 4 CTAs a block and of one CTA per SM, at M = 17, 24, 32 (and 16, where the bit is not read), for e4m3 Spense
    weights and for the FP8 dense rows (``sk``)."""
    from spense.runtime.fp8 import quantize_weight

    gen = torch.Generator().manual_seed(31)
    wq, sw = quantize_weight(torch.randn(1024, 4096, generator=gen).cuda())
    dense = (True, wgsp.dense_fp8_kernel_weights(wq, sw), wq.double() * sw.double()[:, None])
    for _, kw, ref in [*_spense_layers(gen, fp8s=(True,)), dense]:
        for split in (2, 4, 0):
            for M in (16, 17, 24, 32):
                for pair in (("38913", "104449"), ("6145", "71681"), ("14337", "79873")):
                    _same_bits(env_switch, kw, ref, M, gen, pair, split, (kw.rows_sparse, split, M, pair))


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


# a stream-K variant past 131071 given straight to the extension (run in a child process; also by
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
               "        kw.rows_sparse // 16, kw.rows_dense // 16, kw.Ss, kw.SdA, kw.SdB, 3, ws, cnt, 131075,\n"
               "        kw.wscale, 0, torch.empty(0, dtype=torch.int64))\n"
               "except RuntimeError as e:\n"
               "    print('REFUSED', 'must be 0..131071' in str(e))\n")


@pytest.mark.gpu
@sm90
def test_gpu_extension_refuses_a_bad_variant_with_an_error():
    """The extension's own checks raise (RuntimeError naming the bound), not crash the process: a stream-K
    variant past 131071 given straight to spense_wgsp, in a child process so that a crash fails only this test."""
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(here, "..", "src"), here]))
    r = subprocess.run(["python3", "-X", "faulthandler", "-u", "-c", REFUSE_CODE], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0 and "REFUSED True" in r.stdout, (r.returncode, r.stdout[-300:], r.stderr[-800:])
