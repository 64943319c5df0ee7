"""The mma.sp kernel layout (``spense.runtime.mmasp``): round trips of values, metadata and e4m3
bytes, block tables, the exact inverse, and on the GPU (``gpu``) the kernel against the reference."""

import os
from pathlib import Path

import pytest
import torch

from conftest import load_benchmark
from spense.format import SpenseLayout, dense_count, pack, unpack
from spense.runtime import SpenseLinear
from test_runtime import make, pruned_24

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_mmasp_kernel_layout_roundtrip():
    """The CUDA kernel's pre-arranged layout is a permutation of the canonical bytes (CPU check)."""
    from spense.runtime.mmasp import to_kernel_layout

    w, lay = make(48, 128, "cols", 0.25, torch.bfloat16)
    p = pack(w, lay)
    kw = to_kernel_layout(p, "cpu")
    R, Ks = p.sparse_shape
    # every stored value appears in the fragment buffer, padding is zeros
    assert kw.sv.numel() == kw.rows_sparse * ((Ks + 63) // 64 * 32)
    a, b = kw.sv[kw.sv != 0].float().sort().values, p.values[p.values != 0].float().sort().values
    assert torch.equal(a, b)
    assert kw.out_row[:48].tolist() == list(range(48)) and (kw.out_row[48:] == -1).all()


def test_mmasp_fp8_layout_and_bit_conversion():
    """FP8 kernel layout = the bf16 fragment order with a lane's j fragments adjacent, and the
    in-register e4m3 -> bf16 bit placement ((b & 0x80) << 8 | (b & 0x7f) << 4) reads e4m3 * 2^-120
    (the kernel then multiplies by 2^120 in bf16; its epilogue scale is the plain channel scale)."""
    from spense.runtime.mmasp import FP8_BIAS, to_kernel_layout

    b = torch.arange(256, dtype=torch.int64)
    e = b.to(torch.uint8).view(torch.float8_e4m3fn).float()
    bits = ((b & 0x80) << 8) | ((b & 0x7F) << 4)
    v = torch.where(bits >= 2**15, bits - 2**16, bits).to(torch.int16).view(torch.bfloat16).float()
    ok = torch.isfinite(e)
    assert torch.equal(v[ok] * FP8_BIAS, e[ok])
    for axis in ("cols", "rows"):
        w, lay = make(96, 256, axis, 0.25, torch.float32, block=64)
        p8 = pack(w, lay, fp8=True)
        k8 = to_kernel_layout(p8, "cpu")
        pb = pack(unpack(p8, dtype=torch.float32) / p8.scale[:, None], lay)  # e4m3 values as fp32
        pb = type(pb)(pb.layout, pb.values.to(torch.bfloat16), pb.meta, pb.dense.to(torch.bfloat16), None)
        kb = to_kernel_layout(pb, "cpu")
        assert k8.fp8 and not kb.fp8 and torch.equal(k8.sm, kb.sm) and torch.equal(k8.out_row, kb.out_row)
        for a8, ab, jn in ((k8.sv, kb.sv, 2), (k8.dv, kb.dv, 4)):
            if ab.numel() <= 16:
                continue
            # [.., j//2, lane, j%2, 8] -> [.., j, lane, 8]
            a8 = a8.reshape(-1, jn // 2, 32, 2, 8).permute(0, 1, 3, 2, 4).reshape(-1)
            assert torch.equal(a8.view(torch.float8_e4m3fn).float(), ab.float())
        assert torch.equal(k8.wscale, p8.scale.float())


def test_mmasp_block_tables():
    """axis=cols layouts made of whole aligned 64-column blocks need no gather of x."""
    from spense.runtime.mmasp import block_steps, to_kernel_layout

    K = 512
    idx = torch.tensor([64 * 2 + i for i in range(64)] + [64 * 5 + i for i in range(64)])
    assert block_steps(idx, K).tolist() == [128, 320]
    assert block_steps(torch.arange(100), 100).tolist() == [0, 64]  # short last block of [0, K)
    assert block_steps(torch.arange(1, 65), K) is None
    assert block_steps(torch.arange(100), 200) is None
    lay = SpenseLayout((64, K), "cols", idx, block=64)
    w = torch.randn(64, K)
    s, d = lay.split(w)
    g = s.reshape(64, -1, 4)
    s = (g * (g.abs().argsort(-1).argsort(-1) >= 2)).reshape(s.shape)
    kw = to_kernel_layout(pack(lay.merge(s, d).bfloat16(), lay), "cpu")
    assert not kw.gather and kw.dblk.tolist() == [128, 320]
    assert kw.sblk.tolist() == [c for c in range(0, K, 64) if c not in (128, 320)]
    w2, lay2 = make(64, K, "cols", 0.25, torch.bfloat16, block=64)  # arbitrary columns
    kw2 = to_kernel_layout(pack(w2, lay2), "cpu")
    assert kw2.gather and kw2.xperm.numel() == (kw2.Ss + kw2.SdA) * 64


@pytest.mark.parametrize("axis", ["cols", "rows"])
def test_unpack_kernel_layout_is_exact_inverse(axis):
    """unpack_kernel_layout(to_kernel_layout(p)) == unpack(p), bf16 and FP8, block and gathered layouts."""
    from spense.runtime.mmasp import to_kernel_layout, unpack_kernel_layout

    for ratio in (0, 0.25, 0.5):
        for N, K, blk in ((48, 128, 16), (96, 256, 64), (40, 192, 64)):
            w, lay = make(N, K, axis, ratio, torch.bfloat16, block=blk)
            p = pack(w, lay)
            assert torch.equal(unpack_kernel_layout(to_kernel_layout(p, "cpu"), lay), unpack(p))
            w, lay = make(N, K, axis, ratio, torch.float32, block=blk)
            p8 = pack(w, lay, fp8=True)
            u8 = unpack_kernel_layout(to_kernel_layout(p8, "cpu"), lay, torch.float32)
            assert torch.equal(u8, unpack(p8, dtype=torch.float32))


def _block_layout(N, K, ratio, gen, device):
    """axis=cols layout of whole aligned 64-column blocks (what `spense bench` selects)."""
    nb = K // 64
    nd = dense_count(K, ratio, 64) // 64
    blk = torch.randperm(nb, generator=gen)[:nd].sort().values
    idx = (blk[:, None] * 64 + torch.arange(64)).reshape(-1)
    return SpenseLayout((N, K), "cols", idx, block=64)


def test_extension_builds_every_unit_and_its_hash_covers_every_source(tmp_path):
    """The build compiles every ``.cu`` and ``.cpp`` of csrc/ (one translation unit each, in parallel), and the hash
    that decides whether a prebuilt module (``SPENSE_MMASP_SO``) matches the sources changes with any of its files."""
    import shutil

    from spense.runtime import mmasp

    csrc = Path(mmasp.__file__).parent / "csrc"
    assert sorted(mmasp._SOURCES) == sorted(p.name for g in ("*.cu", "*.cpp") for p in csrc.glob(g))
    copy = tmp_path / "csrc"
    shutil.copytree(csrc, copy)
    h0 = mmasp._src_hash(copy)
    assert h0 == mmasp._src_hash()
    for name in ("spense_wgsp.cu", "spense_check.cuh", "spense_ext.h", "spense_bind.cpp"):
        f = copy / name
        b = f.read_bytes()
        f.write_bytes(b + b"\n")
        assert mmasp._src_hash(copy) != h0, name
        f.write_bytes(b)
    assert mmasp._src_hash(copy) == h0


def test_extension_build_announced_and_its_failure_one_line(monkeypatch, tmp_path, capsys):
    """Where torch's cache holds no module newer than the sources, loading says on stderr that a build of minutes
    starts and how long it took; a failed build is a DeviceError of one line naming the compiler's error."""
    import torch.utils.cpp_extension as cpp

    from spense.errors import DeviceError
    from spense.runtime import mmasp

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.delenv("SPENSE_MMASP_SO", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(mmasp, "_EXT", None)
    monkeypatch.setattr(mmasp, "_EXT_ARCH", mmasp._EXT_ARCH)  # load_extension sets it
    calls = []

    def fake_load(**kw):
        calls.append(kw)
        return "module"

    monkeypatch.setattr(cpp, "load", fake_load)
    assert mmasp.load_extension() == "module"
    err = capsys.readouterr().err
    assert "compiling the mma.sp CUDA extension for sm_90a" in err and "extension ready" in err
    assert sorted(Path(f).name for f in calls[0]["sources"]) == sorted(mmasp._SOURCES)
    # a module newer than every source in the cache: loaded without a word
    (tmp_path / "spense_mmasp_ext" / "spense_mmasp_ext.so").write_bytes(b"")
    monkeypatch.setattr(mmasp, "_EXT", None)
    mmasp.load_extension()
    assert capsys.readouterr().err == ""

    def failing_load(**kw):
        raise RuntimeError("Error building extension 'spense_mmasp_ext': [1/3] nvcc ...\n"
                           "spense_wgsp.cu(12): error: identifier \"x\" is undefined\nninja: build stopped")

    monkeypatch.setattr(cpp, "load", failing_load)
    monkeypatch.setattr(mmasp, "_EXT", None)
    with pytest.raises(DeviceError) as ei:
        mmasp.load_extension()
    msg = str(ei.value)
    assert "\n" not in msg and 'spense_wgsp.cu(12): error: identifier "x" is undefined' in msg

    def no_nvcc(**kw):
        raise RuntimeError("Error building extension 'spense_mmasp_ext': [1/3] nvcc -c a.cu\n/bin/sh: 1: nvcc: not found\n"
                           "ninja: build stopped: subcommand failed.")

    monkeypatch.setattr(cpp, "load", no_nvcc)
    with pytest.raises(DeviceError, match="nvcc: not found"):
        mmasp.load_extension()

    def template_error(**kw):  # the g++ context line before the error line is not taken for it
        raise RuntimeError("Error building extension 'spense_mmasp_ext'\nspense_bind.cpp: In instantiation of "
                           "'auto plain_errors(R (*)(A ...))':\nspense_bind.cpp:14:3: error: no match for call\n"
                           "collect2: error: ld returned 1 exit status")

    monkeypatch.setattr(cpp, "load", template_error)
    with pytest.raises(DeviceError, match="spense_bind.cpp:14:3: error: no match for call"):
        mmasp.load_extension()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("N,K", [(4096, 4096), (200, 4128), (1024, 12288)])
def test_gpu_mmasp_block_tables_and_fp8(N, K):
    """mmasp on whole-64-column-block cols layouts (no x gather), rows layouts and random-column
    layouts (gather), bf16 and FP8 weights, vs a float64 reference of the (dequantised) weights."""
    from spense.runtime.mmasp import to_kernel_layout

    gen = torch.Generator().manual_seed(N + K)
    for fp8 in (False, True):
        for kind, ratio in (("blocks", 0.0), ("blocks", 0.25), ("blocks", 0.5), ("random", 0.25), ("rows", 0.25)):
            if kind == "blocks":
                lay = _block_layout(N, K, ratio, gen, "cuda")
            else:
                axis = "rows" if kind == "rows" else "cols"
                dim = N if axis == "rows" else K
                idx = torch.randperm(dim, generator=gen)[: dense_count(dim, ratio, 64)].sort().values
                lay = SpenseLayout((N, K), axis, idx, block=64)
            w = torch.randn(N, K, generator=gen)
            s, d = lay.split(w)
            g = s.reshape(s.shape[0], -1, 4)
            s = (g * (torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2)).reshape(s.shape)
            w = lay.merge(s, d).to("cuda", torch.bfloat16)
            p = pack(w, lay, fp8=fp8)
            kw = to_kernel_layout(p, "cuda")
            assert kw.gather == (kind == "random"), (kind, ratio)
            wref = unpack(p, dtype=torch.float32).double()
            m = SpenseLinear(p, backend="mmasp")
            for M in (1, 5, 16, 40, 64):
                x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
                y = torch.full((M, N), float("nan"), device="cuda", dtype=torch.bfloat16)
                m.forward_mmasp(x, out=y)
                assert torch.isfinite(y).all(), (fp8, kind, ratio, M, "unwritten/NaN outputs")
                ref = x.double() @ wref.T
                e = ((y.double() - ref).norm() / ref.norm()).item()
                assert e <= 1e-2, (fp8, kind, ratio, M, e)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("fp8", [False, True])
def test_gpu_mmasp_x_perm_same_bits_as_fragments(fp8):
    """The register kernel reading x_perm (X_PERM) gives the same bits as reading x_fragments (both
    with the warps' sums in order, M <= 8), on column-block and row layouts; the op passes opcheck;
    RT = 2 or M > 8 with x_perm is refused."""
    from spense.errors import InputError
    from spense.runtime.mmasp import mmasp_forward, mmasp_op, to_kernel_layout
    from spense.runtime.xops import x_perm

    gen = torch.Generator().manual_seed(11)
    N, K = 512, 2048
    for lay in (_block_layout(N, K, 0.25, gen, "cpu"), SpenseLayout((N, K), "rows", torch.arange(0, N, 4), block=16)):
        p = pack(pruned_24(lay, gen).to(torch.bfloat16), lay, fp8=fp8)
        kw = to_kernel_layout(p, "cuda")
        assert kw.xperm is None
        wref = unpack(p, dtype=torch.float32).double().cuda()
        for M in (1, 5, 8):
            x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
            for warps in (4, 8):
                yf = mmasp_forward(kw, x, RT=1, warps=warps, stages=0, xfrag=True)
                yp = mmasp_forward(kw, x_perm(x), RT=1, warps=warps, stages=0, xperm=True)
                assert torch.equal(yf, yp), (lay.axis, M, warps)
            ref = x.double() @ wref.T
            assert ((yp.double() - ref).norm() / ref.norm()).item() <= 1e-2
        x = torch.randn(3, K, device="cuda").to(torch.bfloat16)
        torch.library.opcheck(mmasp_op, (kw.sv, kw.sm, kw.dv, x_perm(x), kw.sblk, kw.dblk, kw.out_row, kw.wscale,
                                         kw.n_out, kw.rows_sparse // 16, kw.rows_dense // 16, kw.Ss, kw.SdA, kw.SdB,
                                         1, 4, kw.fp8, 0, x.new_empty(0), True))
        with pytest.raises(InputError):
            mmasp_forward(kw, x_perm(x), RT=2, warps=4, stages=0, xperm=True)
        with pytest.raises(InputError):
            mmasp_forward(kw, x_perm(torch.zeros(9, K, device="cuda", dtype=torch.bfloat16)), RT=1, warps=4,
                          stages=0, xperm=True)


@pytest.mark.gpu
@gpu
def test_gpu_mmasp_f16_x_gives_the_bits_of_bf16_x():
    """e4m3 weights, x given as its f16 operand x * 2^-8 (SPENSE_MMASP_F16's path: FP8 == 2 in the register
    kernel): through the fragments (RT 1 and 2, M <= 16) and through x_perm (M <= 8) it gives the bf16 path's
    exact bits wherever no |x| is below 2^-6 (every product is exact either way, and 2^-8 comes back as a
    power of two), and within rounding of it with tiny x; on column-block, gathered-column and row layouts.
    x in f16 with bf16 weights, or past M = 16, is refused."""
    from spense.runtime.mmasp import mmasp_forward, to_kernel_layout
    from spense.runtime.xops import f16_operand, gathered_fragments, x_perm

    gen = torch.Generator().manual_seed(23)
    N, K = 512, 2048
    idx = torch.randperm(K, generator=gen)[:512].sort().values
    for lay in (_block_layout(N, K, 0.25, gen, "cpu"), SpenseLayout((N, K), "cols", idx, block=64),
                SpenseLayout((N, K), "rows", torch.arange(0, N, 4), block=16)):
        w = pruned_24(lay, gen)
        p = pack(w.to(torch.bfloat16), lay, fp8=True)
        kw = to_kernel_layout(p, "cuda")
        for M in (1, 5, 8, 16):
            x = torch.randn(M, K, generator=gen)
            x = torch.where(x.abs() < 2.0 ** -6, torch.zeros_like(x), x).to("cuda", torch.bfloat16)
            tiny = x.clone()
            tiny[:, ::5] *= 2.0 ** -12
            for RT in (1, 2):
                for warps in (4, 8):
                    for xs in (x, tiny):
                        yb = mmasp_forward(kw, xs, RT=RT, warps=warps, stages=0, xfrag=True)
                        yh = mmasp_forward(kw, xs, RT=RT, warps=warps, stages=0,
                                           xf=gathered_fragments(f16_operand(xs), kw.xperm))
                        if xs is x:
                            assert torch.equal(yb, yh), (lay.axis, M, RT, warps)
                        else:
                            assert ((yb.double() - yh.double()).norm() / yb.double().norm()).item() <= 1e-3
            if M <= 8 and kw.xperm is None:
                yp = mmasp_forward(kw, x_perm(f16_operand(x)), RT=1, warps=4, stages=0, xperm=True)
                assert torch.equal(yp, mmasp_forward(kw, x, RT=1, warps=4, stages=0, xfrag=True)), (lay.axis, M)
        xh = f16_operand(torch.randn(17, K, device="cuda").to(torch.bfloat16))
        with pytest.raises(RuntimeError, match="f16"):
            mmasp_forward(kw, xh, RT=1, warps=4, stages=0, xf=gathered_fragments(xh, kw.xperm))
    kb = to_kernel_layout(pack(w.to(torch.bfloat16), lay), "cuda")
    xh = f16_operand(torch.randn(4, K, device="cuda").to(torch.bfloat16))
    with pytest.raises(RuntimeError, match="f16"):
        mmasp_forward(kb, xh, RT=1, warps=4, stages=0, xf=gathered_fragments(xh, kb.xperm))


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("fp8", [False, True])
def test_gpu_mmasp_same_bits_every_call(fp8):
    """At M <= 16 and <= 16 warps the register kernel's warps meet in order (DET): repeated calls give
    the same bits, also when the launch order of the CTAs changes between them (other work in between),
    and stay within the float64 reference's tolerance.  Above 8 warps e4m3 takes the kernel without
    EARLY = 3 (bound to 8 warps), and RT = 2 at 16 warps holds 16 slices of 32 rows x 16 tokens."""
    from spense.runtime.mmasp import mmasp_forward, to_kernel_layout

    N, K = 2048, 4096
    gen = torch.Generator().manual_seed(7)
    lay = _block_layout(N, K, 0.25, gen, "cuda")
    w = torch.randn(N, K, generator=gen)
    s, d = lay.split(w)
    g = s.reshape(s.shape[0], -1, 4)
    s = (g * (torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2)).reshape(s.shape)
    p = pack(lay.merge(s, d).to("cuda", torch.bfloat16), lay, fp8=fp8)
    kw = to_kernel_layout(p, "cuda")
    wref = unpack(p, dtype=torch.float32).double()
    for M in (1, 8, 16):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        # 2: 12 CTAs a SM (8B.gate_up's 1,536 row tiles in one wave: EARLY = 3 in e4m3)
        for RT, warps in ((1, 2), (1, 4), (1, 8), (1, 12), (1, 16), (2, 16)):
            ys = []
            for i in range(4):
                if i % 2:
                    torch.randn(4096, 4096, device="cuda").sum()  # other work between the calls
                ys.append(mmasp_forward(kw, x, RT=RT, warps=warps, stages=0))
            assert all(torch.equal(ys[0], y) for y in ys[1:]), (fp8, M, RT, warps)
            ref = x.double() @ wref.T
            assert ((ys[0].double() - ref).norm() / ref.norm()).item() <= 1e-2, (fp8, M, RT, warps)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("axis", ["cols", "rows"])
def test_gpu_mmasp_fp8_every_code_exact(axis):
    """Every finite e4m3 code (subnormals included) comes out of the kernel exactly: scale 1, one-hot
    x, so y[m, n] = w[n, k_m] (bf16 holds every e4m3 value) - also for tiny activations."""
    N, K = 64, 256
    gen = torch.Generator().manual_seed(1)
    codes = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float()
    codes = codes[torch.isfinite(codes)]
    lay = (_block_layout(N, K, 0.25, gen, "cpu") if axis == "cols"
           else SpenseLayout((N, K), "rows", torch.arange(0, N, 4), block=16))
    w = codes[torch.randint(len(codes), (N, K), generator=gen)]
    s, d = lay.split(w)
    g = s.reshape(s.shape[0], -1, 4)
    s = (g * (torch.arange(4) < 2)).reshape(s.shape)
    w = lay.merge(s, d)
    w[:, 0] = 448.0  # amax 448 in every row -> scale exactly 1 (column 0 is kept in both layouts)
    p = pack(w, lay, fp8=True)
    assert torch.equal(p.scale, torch.ones(N)) and torch.equal(unpack(p, dtype=torch.float32), w)
    m = SpenseLinear(p.to("cuda"), backend="mmasp")
    for amp in (1.0, 2.0 ** -20):
        for k0 in range(0, K, 64):
            x = torch.zeros(64, K)
            x[torch.arange(64), k0 + torch.arange(64)] = amp
            y = torch.full((64, N), float("nan"), device="cuda", dtype=torch.bfloat16)
            m.forward_mmasp(x.to("cuda", torch.bfloat16), out=y)
            exp = (w[:, k0:k0 + 64].T * amp).to(torch.bfloat16)
            assert torch.equal(y.cpu(), exp), (axis, amp, k0, (y.cpu().float() - exp.float()).abs().max())


def prefill_weight(kind: str, N: int, K: int, gen: torch.Generator) -> tuple[torch.Tensor, SpenseLayout]:
    """A random (N, K) weight already in Spense form at 25 % dense: whole 64-column blocks (``blocks``, what
    the engine selects) or N / 4 dense rows (``rows``), the rest 2:4 at random positions."""
    if kind == "blocks":
        lay = _block_layout(N, K, 0.25, gen, "cuda")
    else:
        lay = SpenseLayout((N, K), "rows", torch.randperm(N, generator=gen)[: N // 4].sort().values, block=64)
    w = torch.randn(N, K, generator=gen)
    s, d = lay.split(w)
    g = s.reshape(s.shape[0], -1, 4)
    s = (g * (torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2)).reshape(s.shape)
    return lay.merge(s, d), lay


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("kind", ["blocks", "rows"])
def test_gpu_fp8_prefill_through_e4m3(monkeypatch, kind):
    """``SPENSE_FP8_PREFILL=fp8``: a compacted FP8 layer checks its e4m3 unpack against the bf16 one at
    compact(), then prefills (M = 2048) through the e4m3 weights and the FP8 dense baseline's kernel,
    within W8A8's error of the dequantised reference; without the switch the bf16 path stays."""
    from spense.runtime import unpack as U

    monkeypatch.setenv("SPENSE_FP8_PREFILL", "fp8")
    gen = torch.Generator().manual_seed(3)
    N, K = 1024, 4096
    w, lay = prefill_weight(kind, N, K, gen)
    p = pack(w.to("cuda", torch.bfloat16), lay, fp8=True)
    wref = unpack(p, dtype=torch.float32).double()
    m = SpenseLinear(p, backend="auto").compact()
    assert U._OK_E4M3[(lay.axis, False)] is True
    x = torch.randn(2048, K, generator=gen).to("cuda", torch.bfloat16)
    ref = x.double() @ wref.T
    for on in ("fp8", "bf16"):
        monkeypatch.setenv("SPENSE_FP8_PREFILL", on)
        y = m(x)
        e = ((y.double() - ref).norm() / ref.norm()).item()
        assert e <= (3e-2 if on == "fp8" else 1e-2), (kind, on, e)


def _nvcc():
    """This machine's nvcc (on PATH, or /usr/local/cuda/bin), else None."""
    import shutil

    return shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)


def _sass_tools():
    """(nvcc, cuobjdump) where both are found (cuobjdump also needs nvdisasm beside it or on PATH): on PATH, or
    from the ``nvidia-cuda-cuobjdump`` / ``nvidia-cuda-nvdisasm`` wheels (``.ci/run`` installs them)."""
    import shutil

    nvcc = _nvcc()
    dirs = []
    try:
        import nvidia

        dirs = [p for d in nvidia.__path__ for p in Path(d).glob("cu*/bin")]
    except ImportError:
        pass
    path = os.pathsep.join([str(d) for d in dirs] + [os.environ.get("PATH", "")])
    cuobjdump = shutil.which("cuobjdump", path=path)
    if nvcc is None or cuobjdump is None or shutil.which("nvdisasm", path=path) is None:
        return None
    return nvcc, cuobjdump, path


#: the register kernel's in-order-sum instantiations the engine runs at M <= 16 (spense_mmasp.cu: launch_reg): bf16 and
#: e4m3 on x's f16 operand, through x_perm (4) or fragments (1); RT = NT = 1 (M <= 8) with prologue EARLY = 0 or 3,
#: and where SPENSE_MMASP_CLAMP takes it (bf16 at RT = 1, NT = 2; e4m3 at NT = 2, RT = 2 and RT = NT = 1) every step of
#: a round loaded, EARLY = 16
_ENGINE_REG_KERNELS = ["1, 1, 0, 4, 4, false, 0, 2, false, true, 0", "1, 1, 0, 4, 1, false, 0, 2, false, true, 0",
                       "1, 1, 2, 4, 4, false, 0, 2, false, true, 0", "1, 1, 2, 4, 1, false, 0, 2, false, true, 0",
                       "1, 1, 2, 4, 4, false, 0, 2, false, true, 3", "1, 1, 2, 4, 1, false, 0, 2, false, true, 3",
                       "1, 1, 2, 4, 4, false, 0, 2, false, true, 16", "1, 1, 2, 4, 1, false, 0, 2, false, true, 16",
                       "1, 2, 0, 4, 1, false, 0, 2, false, true, 16", "1, 2, 2, 4, 1, false, 0, 2, false, true, 16",
                       "2, 1, 2, 4, 1, false, 0, 2, false, true, 16", "2, 2, 2, 4, 1, false, 0, 2, false, true, 16"]


def test_register_kernel_round_loads_sit_behind_no_branch(tmp_path):
    """The in-order-sum register kernels the engine runs at M <= 16, compiled for sm_90 (nvcc, no GPU): no branch
    between the first and the last weight load of any loop's round.  ptxas once put each step's loads behind a branch
    of its own (since 073bcbb, through the prologue before the loop; fixed in 4f7a62e) and the bf16 kernel ran 1-12 %
    slower per layer, up to 41 % in the harness (benchmarks/results/wgsd_2026-12-02, folders bj, bk)."""
    import subprocess

    tools = _sass_tools()
    if tools is None:
        pytest.skip("needs nvcc, cuobjdump and nvdisasm (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
    nvcc, cuobjdump, path = tools
    root = Path(__file__).resolve().parents[1]
    srl = load_benchmark("sass_round_loads")
    src = tmp_path / "k.cu"
    src.write_text('#include "spense_mmasp_reg.cuh"\n' + "".join(
        f"void* k{i}() {{ return (void*)spense_mmasp_kernel<{k}>; }}\n" for i, k in enumerate(_ENGINE_REG_KERNELS)))
    cubin = tmp_path / "k.cubin"
    env = {**os.environ, "PATH": path}
    subprocess.run([nvcc, "-std=c++17", "-O3", "-gencode=arch=compute_90,code=sm_90", "--use_fast_math", "-cubin",
                    "-I", str(root / "src/spense/runtime/csrc"), "-o", str(cubin), str(src)], check=True, env=env,
                   capture_output=True)
    sass = subprocess.run([cuobjdump, "-sass", str(cubin)], check=True, env=env, capture_output=True, text=True).stdout
    fns = srl.functions(sass)
    assert len(fns) == len(_ENGINE_REG_KERNELS), list(fns)
    for name, body in fns.items():
        rounds = srl.round_load_branches(body)
        assert rounds and all(br == 0 for _, br in rounds), (name, rounds)


def test_xs_clamped_kernel_fits_two_ctas_of_8_warps_a_sm(tmp_path):
    """SPENSE_MMASP_XS_CLAMP's shared-x kernels (NT = 2, bf16 and e4m3), compiled for sm_90 (nvcc, no GPU): held to
    128 registers a thread (``__launch_bounds__(256, 2)``; the plain bf16 kernel takes 142) without spilling, so two
    CTAs of 8 warps fit on a SM at no cost in local memory."""
    import re
    import subprocess

    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("needs nvcc")
    src = tmp_path / "xs.cu"
    src.write_text('#include "spense_mmasp_xs.cuh"\n' + "".join(
        f"void* k{f}() {{ return (void*)spense_mmasp_xs_kernel<2, {f}, true>; }}\n" for f in ("false", "true")))
    r = subprocess.run([nvcc, "-std=c++17", "-O3", "-gencode=arch=compute_90,code=sm_90", "--use_fast_math", "-cubin",
                        "-Xptxas", "-v", "-I", str(Path(__file__).resolve().parents[1] / "src/spense/runtime/csrc"),
                        "-o", str(tmp_path / "xs.cubin"), str(src)], check=True, capture_output=True, text=True)
    regs = [int(n) for n in re.findall(r"Used (\d+) registers", r.stderr)]
    spills = re.findall(r"(\d+) bytes spill (?:stores|loads)", r.stderr)
    assert len(regs) == 2 and max(regs) <= 128 and spills and all(s == "0" for s in spills), r.stderr[-1500:]


def test_rt2_bf16_kernels_bound_to_256_threads_build_without_spills(tmp_path):
    """SPENSE_MMASP_RT2_256's kernels (bf16, RT = 2, x's fragments, NT 1 / 2, MINB = 1: at most 256 threads, one CTA a
    SM at least), compiled for sm_90a (nvcc, no GPU): no spills, and more than the 128 registers a thread that 512
    threads allow (the bound took effect);
    the form with every step of a sparse round loaded ("2", EARLY = 16) has no branch between the first and the last
    of a sparse round's 16 weight loads, where cuobjdump and nvdisasm are found (its dense rounds, 32 loads, keep the
    branch before each step that every bf16 form at RT = 2 has: CLAMP loads only the sparse rounds whole)."""
    import re
    import subprocess

    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("needs nvcc")
    kernels = [f"2, {nt}, 0, 4, 1, false, 1, 2, false, true, {early}" for nt in (1, 2) for early in (0, 16)]
    src = tmp_path / "rt2.cu"
    src.write_text('#include "spense_mmasp_reg.cuh"\n' + "".join(
        f"void* k{i}() {{ return (void*)spense_mmasp_kernel<{k}>; }}\n" for i, k in enumerate(kernels)))
    cubin = tmp_path / "rt2.cubin"
    r = subprocess.run([nvcc, "-std=c++17", "-O3", "-gencode=arch=compute_90a,code=sm_90a", "--use_fast_math", "-cubin",
                        "-Xptxas", "-v", "-I", str(Path(__file__).resolve().parents[1] / "src/spense/runtime/csrc"),
                        "-o", str(cubin), str(src)], check=True, capture_output=True, text=True)
    regs = [int(n) for n in re.findall(r"Used (\d+) registers", r.stderr)]
    spills = re.findall(r"(\d+) bytes spill (?:stores|loads)", r.stderr)
    assert len(regs) == 4 and min(regs) > 128 and len(spills) == 8 and all(s == "0" for s in spills), r.stderr[-1500:]
    tools = _sass_tools()
    if tools is None:
        return
    _, cuobjdump, path = tools
    sass = subprocess.run([cuobjdump, "-sass", str(cubin)], check=True, env={**os.environ, "PATH": path},
                          capture_output=True, text=True).stdout
    srl = load_benchmark("sass_round_loads")
    tail = "Li16ELb0EEvPK5uint4PKjS2_PK13__nv_bfloat16S2_iiiPKiS9_S9_PKfPS5_iiiiiii"  # EARLY = 16, SSL = false
    clamped = {n: b for n, b in srl.functions(sass).items() if n.endswith(tail)}
    assert len(clamped) == 2, list(srl.functions(sass))
    for name, body in clamped.items():
        sparse = [br for loads, br in srl.round_load_branches(body) if loads == 16]
        assert sparse and all(br == 0 for br in sparse), (name, srl.round_load_branches(body))
