"""Runtime: SpenseLinear backends, packed checkpoints; Triton kernel logic under
TRITON_INTERPRET=1 (CPU subprocess); GPU tests (marked ``gpu``) on the real Qwen3 shapes."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F

from spense.errors import CheckpointError, InputError
from spense.format import SpenseLayout, dense_count, pack, unpack
from spense.runtime import SpenseLinear

HERE = Path(__file__).resolve().parent


def pruned_24(lay: SpenseLayout, gen: torch.Generator) -> torch.Tensor:
    """A random weight of ``lay``'s shape with its sparse region pruned 2:4 at random (two of every four kept)."""
    s, d = lay.split(torch.randn(*lay.shape, generator=gen))
    g = s.reshape(s.shape[0], -1, 4)
    s = (g * (torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2)).reshape(s.shape)
    return lay.merge(s, d)


def make(N, K, axis, ratio, dtype=torch.float32, seed=0, block=16, device="cpu"):
    g = torch.Generator(device=device).manual_seed(seed)
    dim = N if axis == "rows" else K
    idx = torch.randperm(dim, generator=g, device=device)[: dense_count(dim, ratio, block)].sort().values
    lay = SpenseLayout((N, K), axis, idx, block=block)
    w = torch.randn(N, K, generator=g, device=device)
    s, d = lay.split(w)
    if s.numel():
        grp = s.reshape(s.shape[0], -1, 4)
        rank = torch.rand(grp.shape, generator=g, device=grp.device).argsort(-1).argsort(-1)
        s = (grp * (rank < 2)).reshape(s.shape)
    return lay.merge(s, d).to(device=device, dtype=dtype), lay


@pytest.mark.parametrize("axis", ["rows", "cols"])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 1.0])
def test_reference_equals_dense_linear(axis, ratio):
    w, lay = make(48, 64, axis, ratio)
    bias = torch.randn(48)
    m = SpenseLinear(pack(w, lay), bias, backend="reference")
    x = torch.randn(2, 3, 64)
    assert torch.allclose(m(x), F.linear(x, w, bias), atol=1e-5, rtol=1e-5)


def test_fast_backend_on_cpu_warns_and_uses_reference():
    w, lay = make(32, 64, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), backend="auto")
    x = torch.randn(5, 64)
    import spense.runtime.linear as lin

    lin._warned.clear()  # the warning is given once per process
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        y = m(x)
    assert torch.allclose(y, x @ w.T, atol=1e-5)
    assert [str(r.message) for r in rec if "reference" in str(r.message)], [str(r.message) for r in rec]


def test_dense_fallback_warned_once_per_shape_and_m(monkeypatch):
    """Where ``auto`` picks dense F.linear, one warning per shape and M bucket, not one per layer (a model's prefill
    printed a line for each of its linears), and each layer records why."""
    import spense.runtime.autotune as at
    import spense.runtime.linear as lin

    monkeypatch.setattr(at, "default_choice", lambda layer, M: "dense")
    monkeypatch.setattr(lin, "_warned", set())
    layers = [SpenseLinear(pack(*make(32, 64, "cols", 0.25)), backend="auto", name=f"l{i}") for i in range(3)]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert [m._auto_choice(M) for m in layers for M in (300, 310, 2048)] == ["dense"] * 9
    got = [str(r.message) for r in rec]
    assert got == ["spense: 32x64 layers at M~512: dense fallback (sparse kernels do not win here)",
                   "spense: 32x64 layers at M~2048: dense fallback (sparse kernels do not win here)"], got
    assert all(sorted(m.fallbacks) == [512, 2048] for m in layers)


def test_no_dense_copy_is_cached():
    """A layer holds its packed weight only (its buffers, ``weight_bytes``). The reference path unpacks for the
    call and forgets on a GPU; on the CPU, where nothing else runs, it keeps one unpacked copy for every M."""
    w, lay = make(32, 64, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), backend="reference")
    before = m.weight_bytes()
    assert m._cache == {}
    m(torch.randn(3, 64))
    m(torch.randn(70, 64))
    assert list(m._cache) == ["host_w"] and m.weight_bytes() == before
    held = sum(b.numel() * b.element_size() for b in m.buffers())
    assert held < w.numel() * w.element_size()  # less than the dense weight (ratio 0.25, fp32 values)


def test_custom_op_fake_and_cpu_paths():
    w, lay = make(32, 64, "rows", 0.25)
    m = SpenseLinear(pack(w, lay), backend="reference")
    x = torch.randn(4, 64)
    e = x.new_empty(0, dtype=torch.bfloat16)
    torch.library.opcheck(torch.ops.spense.linear_apply.default, (x, e, m.handle),
                          test_utils=("test_schema", "test_faketensor"))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        y = torch.ops.spense.linear_apply(mode.from_tensor(x), mode.from_tensor(e), m.handle)
    assert tuple(y.shape) == (4, 32) and y.dtype == x.dtype
    assert torch.allclose(torch.ops.spense.linear_apply(x, e, m.handle), x @ w.T, atol=1e-5)


def test_spense_linear_compiles_without_graph_breaks():
    w, lay = make(32, 64, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), torch.randn(32), backend="auto")
    x = torch.randn(2, 3, 64)
    torch._dynamo.reset()
    ex = torch._dynamo.explain(lambda t: torch.relu(m(t)) * 2)(x)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = torch.compile(lambda t: m(t), backend="eager", fullgraph=True)(x)
    assert torch.allclose(y, F.linear(x, w, m.bias), atol=1e-5)


def test_reference_on_the_cpu_unpacks_once(monkeypatch):
    """On the CPU the reference backend keeps the unpacked weight: three calls unpack once. An in-place change of
    the packed values, or a cast, unpacks again, and the products follow the new weight."""
    w, lay = make(32, 64, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), torch.randn(32), backend="reference")
    calls = []
    real = SpenseLinear.dense_weight
    monkeypatch.setattr(SpenseLinear, "dense_weight", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    x = torch.randn(3, 64)
    for _ in range(3):
        assert torch.allclose(m(x), F.linear(x, w, m.bias), atol=1e-5)
    assert len(calls) == 1
    with torch.no_grad():
        m.values.mul_(2)
        m.dense.mul_(2)
    assert torch.allclose(m(x), F.linear(x, 2 * w, m.bias), atol=1e-4) and len(calls) == 2
    m.double()
    assert m(x.double()).dtype == torch.float64 and len(calls) == 3


def test_planned_fragments_trace_into_one_graph():
    """With fragments planned for a bucket (as SpenseLinear.plan does on CUDA), forward builds x's
    gathered fragments as traced ops: still one graph, no break; CPU runs the reference (xf unused)."""
    w, lay = make(32, 64, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    m._frag_buckets = {8}
    m._xperm = torch.randperm(64)
    x = torch.randn(1, 6, 64)  # M = 6: bucket 8
    torch._dynamo.reset()
    ex = torch._dynamo.explain(lambda t: torch.relu(m(t)))(x)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    assert m._fragments(x.reshape(-1, 64)).numel() == 2 * 1 * 32 * 8  # ceil(64/64)*2 chunks, NT 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = torch.compile(lambda t: m(t), backend="eager", fullgraph=True)(x)
    assert torch.allclose(y, F.linear(x, w), atol=1e-5)


def test_x_perm_default_is_m1(monkeypatch, request):
    """x_perm serves M = 1 alone by default (it gained 1.4-2.0 % of the 8B step at B = 1, lost 5.5 % at
    B = 8); SPENSE_MMASP_XPERM gives the largest M, clamped to 0..8; a non-integer is refused."""
    from spense.runtime import xops

    request.addfinalizer(xops.x_perm_max_m.cache_clear)
    for v, want in ((None, 1), ("0", 0), ("8", 8), ("64", 8)):
        if v is None:
            monkeypatch.delenv("SPENSE_MMASP_XPERM", raising=False)
        else:
            monkeypatch.setenv("SPENSE_MMASP_XPERM", v)
        xops.x_perm_max_m.cache_clear()
        assert xops.x_perm_max_m() == want, v
    monkeypatch.setenv("SPENSE_MMASP_XPERM", "all")
    xops.x_perm_max_m.cache_clear()
    with pytest.raises(ValueError, match="SPENSE_MMASP_XPERM"):
        xops.x_perm_max_m()


def test_x_perm_bucket_traces_and_runs_other_backends_exactly(monkeypatch, request):
    """A bucket planned for x_perm (SPENSE_MMASP_XPERM=8 on CUDA): forward permutes x as traced ops (one
    graph, no break); where the op then runs another backend (the reference on CPU here) it undoes the
    permutation, so the output is the plain layer's."""
    from spense.runtime import xops

    monkeypatch.setenv("SPENSE_MMASP_XPERM", "8")
    xops.x_perm_max_m.cache_clear()
    request.addfinalizer(xops.x_perm_max_m.cache_clear)
    assert xops.x_perm_max_m() == 8
    w, lay = make(32, 128, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    m._perm_buckets = {8}
    x = torch.randn(1, 6, 128)  # M = 6: bucket 8
    torch._dynamo.reset()
    ex = torch._dynamo.explain(lambda t: torch.relu(m(t)))(x)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = torch.compile(lambda t: m(t), backend="eager", fullgraph=True)(x)
        y2 = m(torch.randn(3, 128))  # M = 3: bucket 4, not planned
    assert torch.allclose(y, F.linear(x, w), atol=1e-5)
    assert y2.shape == (3, 32)
    assert not m.plan([1, 8])._perm_buckets  # CPU: nothing planned


def test_bad_inputs():
    w, lay = make(32, 64, "cols", 0.0)
    with pytest.raises(InputError):
        SpenseLinear(pack(w, lay), backend="nope")
    m = SpenseLinear(pack(w, lay), backend="reference")
    with pytest.raises(InputError):
        m(torch.randn(2, 63))


TRITON_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TRITON_INTERPRET"] = "1"
    import torch
    sys.path.insert(0, sys.argv[1])
    from test_runtime import make
    from spense.format import pack
    from spense.runtime import SpenseLinear
    worst = 0.0
    n = 0
    for dt in (torch.float32, torch.bfloat16):
        for (N, K) in ((40, 96), (64, 128)):
            for axis in ("rows", "cols"):
                for ratio in (0.0, 0.25, 0.5, 1.0):
                    w, lay = make(N, K, axis, ratio, dt, seed=n)
                    m = SpenseLinear(pack(w, lay), backend="triton")
                    for M in (1, 3, 17):
                        x = torch.randn(M, K).to(dt)
                        y = torch.full((M, N), float("nan"), dtype=torch.float32 if dt == torch.float32 else torch.bfloat16)
                        m.forward_triton(x, out=y)
                        ref = x.double() @ w.double().T
                        e = ((y.double() - ref).norm() / ref.norm()).item()
                        assert e == e, "NaN: an output was not written"
                        worst = max(worst, e if dt == torch.float32 else e / 10)
                        n += 1
    # fp8 weights, per-channel scales (and per-token activation scales)
    w, lay = make(64, 128, "cols", 0.25, torch.float32, seed=99)
    m = SpenseLinear(pack(w, lay, fp8=True), backend="triton")
    from spense.format import unpack
    wq = unpack(m.packed, dtype=torch.float32)
    x = torch.randn(5, 128)
    xs = torch.rand(5) + 0.5
    y = m.forward_triton(x.bfloat16(), x_scale=xs)
    ref = (x.bfloat16().double() @ wq.double().T) * xs.double()[:, None]
    e = ((y.double() - ref).norm() / ref.norm()).item()
    assert e < 1e-2, e
    print("OK", n, worst)
    """
)


def test_triton_kernel_interpreted():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(HERE.parent / "src"))
    r = subprocess.run([sys.executable, "-c", TRITON_SCRIPT, str(HERE)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "OK" in r.stdout
    worst = float(r.stdout.split()[-1])
    assert worst < 1e-3, r.stdout


# ------------------------------------------------------------------ packed checkpoints
def _make_ckpt(tiny_llama_dir, tmp_path):
    from spense.io import save_checkpoint
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), local_files_only=True)
    layers = {}
    for i, (name, mod) in enumerate(model.named_modules()):
        if isinstance(mod, torch.nn.Linear) and "layers." in name:
            N, K = mod.weight.shape
            axis = "rows" if i % 2 else "cols"
            w, lay = make(N, K, axis, 0.25, seed=i)
            with torch.no_grad():
                mod.weight.copy_(w)
            layers[name] = {"weight": name + ".weight", "transposed": False, "layout": lay.to_dict(),
                            "method": "test", "dense_ratio": 0.25}
    out = save_checkpoint(model, tiny_llama_dir, tmp_path / "ckpt", {"layers": layers})
    return model, Path(out), layers


def test_pack_checkpoint_and_load_packed(tiny_llama_dir, tmp_path):
    from spense.runtime.checkpoint import load_packed, pack_checkpoint, read_packed

    model, ck, layers = _make_ckpt(tiny_llama_dir, tmp_path)
    out = pack_checkpoint(ck, tmp_path / "packed")
    m = json.loads((out / "spense.json").read_text())
    assert m["packed"] is True
    some = next(iter(layers.values()))["weight"]
    assert some not in m["tensors"] and some + ".values" in m["tensors"] and some + ".meta" in m["tensors"]
    _, packed, _ = read_packed(out)
    for name, p in packed.items():
        assert torch.equal(unpack(p), dict(model.named_parameters())[name + ".weight"].detach())
    pm = load_packed(out, backend="reference")
    n_sl = sum(isinstance(x, SpenseLinear) for x in pm.modules())
    assert n_sl == len(layers)
    ids = torch.randint(0, model.config.vocab_size, (1, 12))
    with torch.no_grad():
        a = model(ids).logits
        b = pm(ids).logits
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    # a device or dtype it cannot serve: one InputError before reading, not torch's RuntimeError/TypeError
    for bad, msg in ((dict(device="mps"), "device 'mps' is not supported"),
                     (dict(dtype=torch.int8), "unknown dtype torch.int8"), (dict(dtype="int8"), "unknown dtype")):
        with pytest.raises(InputError, match=msg):
            load_packed(out, backend="reference", **bad)
    assert load_packed(out, backend="reference", dtype="bfloat16").lm_head.weight.dtype == torch.bfloat16
    # transformers refuses the folder rather than load its pruned linears randomly initialised
    from transformers import AutoModelForCausalLM

    assert not (out / "model.safetensors").exists()
    with pytest.raises(OSError, match="model.safetensors"):
        AutoModelForCausalLM.from_pretrained(str(out))
    # a packed checkpoint written before, under transformers' file name, still loads
    import shutil

    old = tmp_path / "packed_old"
    shutil.copytree(out, old)
    (old / "spense_packed.safetensors").rename(old / "model.safetensors")
    assert torch.equal(load_packed(old, backend="reference")(ids).logits, b)
    # tampering: a packed tensor whose bytes change is refused
    from safetensors.torch import load_file, save_file

    t = load_file(str(out / "spense_packed.safetensors"))
    key = some + ".meta"
    t[key] = t[key].clone()
    t[key][0, 0] ^= 0x01
    save_file(t, str(out / "spense_packed.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError):
        read_packed(out)


# ------------------------------------------------------------------ GPU (real shapes)
QWEN_SHAPES = [(6144, 4096), (4096, 4096), (24576, 4096), (4096, 12288),
               (10240, 5120), (5120, 8192), (51200, 5120), (5120, 25600)]
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("N,K", QWEN_SHAPES)
def test_gpu_backends_match_reference(N, K):
    gen = torch.Generator().manual_seed(N + K)
    worst = {}
    for axis in ("rows", "cols"):
        for ratio in (0.0, 0.125, 0.25, 0.5):
            if axis == "rows" and ratio == 0.0:
                continue
            w, lay = make(N, K, axis, ratio, torch.bfloat16, seed=int(N * ratio) + K, block=64, device="cuda")
            m = SpenseLinear(pack(w, lay), backend="auto")
            for M in (1, 2, 7, 16, 64, 2048):
                x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
                ref = x.double() @ w.double().T
                for b in ("cusparselt", "mmasp", "triton", "auto"):
                    if b in ("mmasp", "triton") and M > 64:
                        continue
                    y = torch.full((M, N), float("nan"), device="cuda", dtype=torch.bfloat16)
                    if b == "mmasp":
                        m.forward_mmasp(x, out=y)
                    elif b == "triton":
                        m.forward_triton(x, out=y)
                    else:
                        y = m(x) if b == "auto" else m.run_backend(b, x)
                    assert torch.isfinite(y).all(), (b, axis, ratio, M, "unwritten/NaN outputs")
                    e = ((y.double() - ref).norm() / ref.norm()).item()
                    worst[b] = max(worst.get(b, 0), e)
                    assert e <= 1e-2, (b, axis, ratio, M, e)
    print(N, K, worst)


@pytest.mark.gpu
@gpu
def test_gpu_cuda_graph_capture():
    w, lay = make(4096, 4096, "cols", 0.25, torch.bfloat16, block=64, device="cuda")
    m = SpenseLinear(pack(w, lay), backend="auto")
    for M in (1, 16, 2048):
        x = torch.randn(M, 4096, device="cuda", dtype=torch.bfloat16)
        for b in ("cusparselt", "mmasp"):
            if b == "mmasp" and M > 64:
                continue
            m.run_backend(b, x)  # warm up (build caches) outside capture
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                y = m.run_backend(b, x)
            x.copy_(torch.randn_like(x))
            g.replay()
            torch.cuda.synchronize()
            ref = x.double() @ w.double().T
            assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-2


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("axis,block,plan_min_m", [("cols", 64, 1), ("rows", 64, 1), ("cols", 16, 1), ("cols", 64, 2)])
def test_gpu_planned_fragments_eager_and_compiled(axis, block, plan_min_m, monkeypatch, request):
    """After ``plan``, forward builds x's fragments (gathered columns included) outside the op: eager and
    torch.compile'd outputs match a float64 reference at M = 1, 5, 8; an unplanned M (16) still works.
    With ``SPENSE_MMASP_XFRAG_PLAN_MIN_M=2`` M = 1 is not planned: the kernel reads x itself there."""
    from spense.runtime import xops

    monkeypatch.setenv("SPENSE_MMASP_XFRAG_PLAN_MIN_M", str(plan_min_m))
    xops.xfrag_plan_min_m.cache_clear()
    request.addfinalizer(xops.xfrag_plan_min_m.cache_clear)  # later tests read the variable again
    N, K = 256, 1024
    gen = torch.Generator().manual_seed(7)
    dim = N if axis == "rows" else K
    idx = torch.randperm(dim, generator=gen)[: dense_count(dim, 0.3, block)].sort().values  # 16: d % 64 != 0
    lay = SpenseLayout((N, K), axis, idx, block=block)
    w = pruned_24(lay, gen).to(torch.bfloat16)
    m = SpenseLinear(pack(w.to("cuda"), lay), backend="mmasp").plan([1, 8])
    # M = 1 goes to x_perm where no column gathers (rows; SPENSE_MMASP_XPERM, default 1), else to fragments
    assert m._frag_buckets | m._perm_buckets == ({1, 8} if plan_min_m == 1 else {8})
    torch._dynamo.reset()  # each parametrization compiles forward again: stay under the recompile limit
    f = torch.compile(m, fullgraph=True, dynamic=False)
    ref_w = w.double().cuda()
    for M in (1, 5, 8, 16):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ ref_w.T
        for y in (m(x), f(x)):
            e = ((y.double() - ref).norm() / ref.norm()).item()
            assert e <= 1e-2, (axis, M, e)



@pytest.mark.gpu
@gpu
def test_gpu_operand_only_gives_the_same_bits(monkeypatch, request):
    """``SPENSE_OPERAND_ONLY=1`` (the default): for planned buckets (x_perm at M = 1, fragments at 8 and 16) the op
    gets an uninitialised tensor of x's shape beside x's operand; eager and torch.compile'd outputs are bit for bit
    those with x itself (``=0``), for bf16 and FP8 layers, backend ``auto`` and ``mmasp``, as loaded and compacted
    (the engine's form).  The warpgroup kernel's threshold is set to 12 (``SPENSE_WGSD_MIN_M``), inside the planned
    bucket 16: where that kernel takes the layer, a compacted layer at M = 12 reads x itself (M = 9 and 16 bracket
    it)."""
    from spense.runtime import wgsp, xops

    for read_once in (xops.operand_only, wgsp.wgsd_min_m):  # later tests read the variables again
        request.addfinalizer(read_once.cache_clear)
    monkeypatch.setenv("SPENSE_WGSD_MIN_M", "12")
    wgsp.wgsd_min_m.cache_clear()
    N, K = 256, 1024
    gen = torch.Generator().manual_seed(11)
    lay = SpenseLayout((N, K), "cols", torch.arange(256, 512), block=64)
    w = pruned_24(lay, gen).to("cuda", torch.bfloat16)
    xs = [torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16) for M in (1, 5, 8, 9, 12, 16)]
    outs = {}
    for on in ("0", "1"):
        monkeypatch.setenv("SPENSE_OPERAND_ONLY", on)
        xops.operand_only.cache_clear()
        for fp8 in (False, True):
            for backend, compacted in (("auto", False), ("mmasp", False), ("auto", True)):
                m = SpenseLinear(pack(w, lay, fp8=fp8), backend=backend)
                m = (m.compact() if compacted else m).plan([1, 8, 16])
                torch._dynamo.reset()
                f = torch.compile(m, fullgraph=True, dynamic=False)
                outs[on, fp8, backend, compacted] = [(m(x), f(x)) for x in xs]
    for key in [k[1:] for k in outs if k[0] == "0"]:
        for x, (y0, c0), (y1, c1) in zip(xs, outs[("0",) + key], outs[("1",) + key]):
            assert torch.equal(y0, y1) and torch.equal(c0, c1) and torch.equal(y0, c0), (key, x.shape[0])


@pytest.mark.gpu
@gpu
def test_gpu_x_perm_planned_engine(monkeypatch, request):
    """With ``SPENSE_MMASP_XPERM=8``, ``plan`` gives M = 1 and 8 to x_perm instead of fragments (whole
    64-column blocks: no gather), with ``=1`` M = 1 alone; eager and torch.compile'd outputs are bit for bit those of the layer
    planned with fragments (the same 16 bytes per lane, the warps' sums in order); M = 16 is unplanned."""
    from spense.runtime import xops

    request.addfinalizer(xops.x_perm_max_m.cache_clear)  # later tests read the variable again
    N, K = 256, 1024
    gen = torch.Generator().manual_seed(5)
    blk = torch.randperm(K // 64, generator=gen)[: K // 256].sort().values
    lay = SpenseLayout((N, K), "cols", (blk[:, None] * 64 + torch.arange(64)).reshape(-1), block=64)
    w = pruned_24(lay, gen).to("cuda", torch.bfloat16)
    xs = [torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16) for M in (1, 5, 8, 16)]
    outs = {}
    planned = {"0": (set(), {1, 8}), "1": ({1}, {8}), "8": ({1, 8}, set())}
    for on in ("0", "1", "8"):
        monkeypatch.setenv("SPENSE_MMASP_XPERM", on)
        xops.x_perm_max_m.cache_clear()
        m = SpenseLinear(pack(w, lay), backend="mmasp").plan([1, 8])
        assert (m._perm_buckets, m._frag_buckets) == planned[on]
        torch._dynamo.reset()
        f = torch.compile(m, fullgraph=True, dynamic=False)
        outs[on] = [(m(x), f(x)) for x in xs]
    ref_w = w.double()
    for x, (y0, c0), (y1, c1), (y8, c8) in zip(xs, outs["0"], outs["1"], outs["8"]):
        assert all(torch.equal(y0, t) for t in (c0, y1, c1, y8, c8)), x.shape[0]
        ref = x.double() @ ref_w.T
        assert ((y8.double() - ref).norm() / ref.norm()).item() <= 1e-2


def test_operand_only_is_passed_where_the_kernel_reads_the_operand_alone(monkeypatch, request):
    """SPENSE_OPERAND_ONLY=1: forward hands the op an uninitialised tensor of x's shape instead of x only on CUDA,
    for a planned bucket that the mma.sp kernel runs (x_perm: backend auto or mmasp; fragments: auto's choice of
    mmasp there, or mmasp), so that torch.compile need not write x; never on CPU (the reference reads x), nor for
    another backend or choice, nor with the switch off (``SPENSE_OPERAND_ONLY=0``; on by default)."""
    from spense.runtime import xops

    request.addfinalizer(xops.operand_only.cache_clear)
    w, lay = make(32, 128, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), None, backend="auto")
    m.choice[8] = "mmasp"
    m.choice[16] = "dense"
    monkeypatch.setenv("SPENSE_OPERAND_ONLY", "0")
    xops.operand_only.cache_clear()
    assert not m._reads_operand_only(8, False, True) and not m._reads_operand_only(1, True, True)
    monkeypatch.delenv("SPENSE_OPERAND_ONLY", raising=False)  # the default: on
    xops.operand_only.cache_clear()
    assert m._reads_operand_only(1, True, True) and m._reads_operand_only(8, False, True)
    assert not m._reads_operand_only(16, False, True)  # auto chose dense there: x itself is read
    assert not m._reads_operand_only(8, False, False) and not m._reads_operand_only(1, True, False)  # CPU
    m.backend = "mmasp"
    assert m._reads_operand_only(16, False, True)
    # a compacted layer: not where this call's M goes to the warpgroup kernel, which reads x
    m._kernel = object()
    monkeypatch.setattr(m, "_wgsd_serves", lambda M: M >= 12)
    assert m._reads_operand_only(16, False, True, 9) and m._reads_operand_only(8, False, True)
    assert not m._reads_operand_only(16, False, True, 12) and not m._reads_operand_only(16, False, True)
    m._kernel = None
    m.backend = "triton"
    assert not m._reads_operand_only(1, True, True) and not m._reads_operand_only(8, False, True)
    m.backend = "auto"
    m._frag_buckets = {8}
    x = torch.randn(6, 128)
    assert torch.allclose(m(x), F.linear(x, w), atol=1e-5)  # CPU: x itself, the reference
