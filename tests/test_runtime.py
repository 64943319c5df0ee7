"""Runtime: SpenseLinear backends, convert, packed checkpoints; Triton kernel logic under
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
from spense.runtime import SpenseLinear, convert

HERE = Path(__file__).resolve().parent


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


def test_no_dense_copy_is_cached():
    """A layer holds its packed weight only: the reference path unpacks for the call and forgets."""
    w, lay = make(32, 64, "cols", 0.25)
    m = SpenseLinear(pack(w, lay), backend="reference")
    before = m.weight_bytes()
    m(torch.randn(3, 64))
    m(torch.randn(70, 64))
    assert m._cache == {} and m.weight_bytes() == before
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


def test_auto_table_only_on_its_device(tmp_path, monkeypatch, caplog):
    """The built-in table serves only the GPU it was measured on; elsewhere the per-device cache
    (written by save_device_table), else the safe rules; one log line says which."""
    import logging

    from spense.runtime import autotune as at

    full = at._full_table()
    assert full["device"] and len(full["capability"]) == 2
    assert at.table_source(full, full["device"], full["capability"]) == "builtin"
    assert at.table_source(full, full["device"], (8, 0)) == "other"
    assert at.table_source(full, "NVIDIA H200", full["capability"]) == "other"
    monkeypatch.setenv("SPENSE_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU 9000")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 6))
    at._DEVICE_TABLES.clear()
    dev = torch.device("cuda", 0)
    with caplog.at_level(logging.WARNING, logger="spense"):
        src, table = at.table_for(dev)
        at.table_for(dev)
    assert (src, table) == ("safe", {})
    assert len([r for r in caplog.records if "no table for Fake GPU 9000" in r.getMessage()]) == 1
    # a layer measured on this device: its choices are cached per device and used next time
    w, lay = make(64, 128, "cols", 0.25, torch.bfloat16, block=64)
    m = SpenseLinear(pack(w, lay), backend="auto")
    m.choice = {1: "triton", 16: "mmasp"}
    m.mmasp_cfg = {16: (2, 4)}
    p = at.save_device_table([m], dev)
    assert p == tmp_path / "autotune" / "Fake_GPU_9000-sm86.json"
    src, table = at.table_for(dev)
    assert src == "cache" and table["device"] == "Fake GPU 9000"
    assert at.default_choice(m, 1, table) == "triton" and at.default_choice(m, 16, table) == "mmasp"
    assert at.default_mmasp_cfg(m, 16, table) == (2, 4)
    assert at.default_choice(m, 1, {}) == "mmasp" and at.default_choice(m, 32, {}) == "dense"
    at._DEVICE_TABLES.clear()


def test_bad_inputs():
    w, lay = make(32, 64, "cols", 0.0)
    with pytest.raises(InputError):
        SpenseLinear(pack(w, lay), backend="nope")
    m = SpenseLinear(pack(w, lay), backend="reference")
    with pytest.raises(InputError):
        m(torch.randn(2, 63))


def test_convert_swaps_pruned_linears():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16))
    w, lay = make(32, 64, "rows", 0.5, seed=3)
    with torch.no_grad():
        model[0].weight.copy_(w)
    x = torch.randn(4, 64)
    ref = model(x)
    manifest = {"layers": {"0": {"weight": "0.weight", "transposed": False, "layout": lay.to_dict()}}}
    convert(model, manifest, backend="reference")
    assert isinstance(model[0], SpenseLinear) and isinstance(model[2], torch.nn.Linear)
    assert torch.allclose(model(x), ref, atol=1e-5)


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


def test_auto_table_lookup():
    from spense.runtime.autotune import lookup

    t = {"bf16,cols,8,8,0.25,1": "mmasp", "bf16,cols,8,8,0.25,16": "dense", "bf16,rows,8,8,0.5,1": "triton"}
    assert lookup(t, "bf16", "cols", 8, 8, 0.3, 2) == "mmasp"
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 12) == "dense"
    assert lookup(t, "bf16", "rows", 8, 8, 0.25, 1) == "triton"
    assert lookup(t, "fp8", "rows", 8, 8, 0.25, 1) is None


def test_auto_table_m_between_measured_points_is_conservative():
    """M=8 shares the one-tile cost of M=4; M=32 (no measurement with 4 tiles) takes the larger
    neighbour's choice, never the smaller's; above 64 disagreeing neighbours give dense."""
    from spense.runtime.autotune import _measured_m, lookup

    ms = [1, 4, 16, 64, 256, 2048]
    assert _measured_m(ms, 4) == [4] and _measured_m(ms, 2) == [4] and _measured_m(ms, 8) == [4]
    assert _measured_m(ms, 12) == [16] and _measured_m(ms, 32) == [64] and _measured_m(ms, 3000) == [2048]
    assert _measured_m(ms, 512) == [256, 2048]
    t = {f"bf16,cols,8,8,0.25,{m}": c for m, c in
         ((1, "mmasp"), (4, "mmasp"), (16, "mmasp"), (64, "dense"), (256, "dense"), (2048, "cusparselt"))}
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 8) == "mmasp"
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 32) == "dense"  # was: the M=16 cell's mmasp
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 512) == "dense"
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 4096) == "cusparselt"
    # a shape measured only up to M=16: M=32 is unmeasured (default rule: dense), not M=16's mmasp
    assert _measured_m([1, 4, 8, 16], 32) == [] and _measured_m([1, 4, 8, 16], 12) == [16]
    t16 = {f"fp8,cols,8,8,0.0,{m}": "mmasp" for m in (1, 4, 8, 16)}
    assert lookup(t16, "fp8", "cols", 8, 8, 0.0, 32) is None


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
    # tampering: a packed tensor whose bytes change is refused
    from safetensors.torch import load_file, save_file

    t = load_file(str(out / "model.safetensors"))
    key = some + ".meta"
    t[key] = t[key].clone()
    t[key][0, 0] ^= 0x01
    save_file(t, str(out / "model.safetensors"), metadata={"format": "pt"})
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


def _block_layout(N, K, ratio, gen, device):
    """axis=cols layout of whole aligned 64-column blocks (what `spense bench` selects)."""
    nb = K // 64
    nd = dense_count(K, ratio, 64) // 64
    blk = torch.randperm(nb, generator=gen)[:nd].sort().values
    idx = (blk[:, None] * 64 + torch.arange(64)).reshape(-1)
    return SpenseLayout((N, K), "cols", idx, block=64)


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


def test_make_auto_table():
    """benchmarks/make_auto_table.py: fastest of ours if > margin x the runtime's dense fallback
    (fp8: dense_bf16), ties/losses -> dense; mmasp launch configs kept; lookup reads the result."""
    import importlib.util

    from spense.runtime.autotune import lookup

    spec = importlib.util.spec_from_file_location("make_auto_table", HERE.parent / "benchmarks" / "make_auto_table.py")
    mat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mat)

    def row(dt, M, backend, ms, cfg=None, d=0.25):
        return {"dtype": dt, "axis": "cols", "N": 64, "K": 128, "dense_ratio": d, "M": M, "backend": backend,
                "ms": ms, "config": cfg}

    rows = [row("bf16", 1, "dense", 10.0), row("bf16", 1, "mmasp", 7.0, [1, 8]), row("bf16", 1, "triton", 9.0),
            row("bf16", 16, "dense", 10.0), row("bf16", 16, "mmasp", 9.95, [2, 8]),  # tie -> dense
            row("bf16", 2048, "dense", 10.0), row("bf16", 2048, "cusparselt", 8.0),
            row("fp8", 1, "dense", 5.0), row("fp8", 1, "dense_bf16", 10.0), row("fp8", 1, "mmasp", 6.0, [2, 4])]
    choice, cfg, stats = mat.make_table(rows, margin=1.02)
    assert choice == {"bf16,cols,64,128,0.25,1": "mmasp", "bf16,cols,64,128,0.25,16": "dense",
                      "bf16,cols,64,128,0.25,2048": "cusparselt", "fp8,cols,64,128,0.25,1": "mmasp"}
    assert cfg["bf16,cols,64,128,0.25,16"] == [2, 8] and cfg["fp8,cols,64,128,0.25,1"] == [2, 4]
    assert stats == {"cells": 4, "dense": 1}
    assert lookup(choice, "bf16", "cols", 64, 128, 0.3, 2) == "mmasp"
    assert lookup(choice, "bf16", "cols", 64, 128, 0.25, 12) == "dense"
    # merging runs: a later run that measures a cell again replaces the whole cell (its dense baseline too)
    run2 = [dict(r, date="later", command="run2") for r in
            (row("bf16", 1, "dense", 10.0), row("bf16", 1, "mmasp", 9.95, [2, 4]),
             row("bf16", 8, "dense", 10.0), row("bf16", 8, "mmasp", 8.0, [1, 8]))]
    choice2, cfg2, stats2 = mat.make_table(rows + run2, margin=1.02)
    assert choice2["bf16,cols,64,128,0.25,1"] == "dense"  # run 1's triton/mmasp rows are gone
    assert cfg2["bf16,cols,64,128,0.25,1"] == [2, 4]
    assert choice2["bf16,cols,64,128,0.25,8"] == "mmasp" and stats2 == {"cells": 5, "dense": 2}
    assert lookup(choice2, "bf16", "cols", 64, 128, 0.25, 8) == "mmasp"
    # the committed table has entries for both dtypes and axes and only known backends
    t = json.loads((HERE.parent / "src" / "spense" / "runtime" / "auto_table.json").read_text())
    assert {k.split(",")[0] for k in t["choice"]} == {"bf16", "fp8"}
    assert {k.split(",")[1] for k in t["choice"]} == {"cols", "rows"}
    assert set(t["choice"].values()) <= {"dense", "mmasp", "triton", "cusparselt"}
    assert all(t[k] for k in ("device", "commit", "date", "command"))


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


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("axis,block", [("cols", 64), ("rows", 64), ("cols", 16)])
def test_gpu_planned_fragments_eager_and_compiled(axis, block):
    """After ``plan``, forward builds x's fragments (gathered columns included) outside the op: eager and
    torch.compile'd outputs match a float64 reference at M = 1, 5, 8; an unplanned M (16) still works."""
    N, K = 256, 1024
    gen = torch.Generator().manual_seed(7)
    dim = N if axis == "rows" else K
    idx = torch.randperm(dim, generator=gen)[: dense_count(dim, 0.3, block)].sort().values  # 16: d % 64 != 0
    lay = SpenseLayout((N, K), axis, idx, block=block)
    w = torch.randn(N, K, generator=gen)
    s, d = lay.split(w)
    g = s.reshape(s.shape[0], -1, 4)
    s = (g * (torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2)).reshape(s.shape)
    w = lay.merge(s, d).to(torch.bfloat16)
    m = SpenseLinear(pack(w.to("cuda"), lay), backend="mmasp").plan([1, 8])
    assert m._frag_buckets == {1, 8}
    torch._dynamo.reset()  # each parametrization compiles forward again: stay under the recompile limit
    f = torch.compile(m, fullgraph=True, dynamic=False)
    ref_w = w.double().cuda()
    for M in (1, 5, 8, 16):
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ ref_w.T
        for y in (m(x), f(x)):
            e = ((y.double() - ref).norm() / ref.norm()).item()
            assert e <= 1e-2, (axis, M, e)


def test_make_mmasp_cfg_table_and_its_use_on_that_gpu(tmp_path, monkeypatch):
    """benchmarks/make_mmasp_cfg_table.py: per cell the fastest reg_xf config when >= 2 were timed, a
    later file replacing a cell, pdl lines left out; table_for serves the packaged table on its GPU
    only (launch configs, no backend choices), after the per-device cache."""
    import importlib.util
    from types import SimpleNamespace

    from spense.runtime import autotune as at

    spec = importlib.util.spec_from_file_location("mk", HERE.parent / "benchmarks" / "make_mmasp_cfg_table.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)

    def line(N, M, RT, w, us, fp8=0, pdl=""):
        return (f"N={N} K=4096 d=0.250 axis=c fp8={fp8} M={M} RT={RT} warps={w} stages=4 xfrag=1{pdl} | "
                f"rel_diff 0 nonfinite 0 | reg 99.0 us 1 GB/s | reg_xf {us} us 1 GB/s | bulk 1.0 us 1 GB/s")

    old = "\n".join(["# NVIDIA H200, 2026-11-30T16:00:00Z, commit aaa", line(6144, 1, 1, 4, 14.0),
                     line(6144, 1, 1, 8, 13.0), line(6144, 16, 1, 4, 17.0), line(6144, 16, 2, 4, 30.0),
                     line(6144, 16, 1, 8, 5.0, pdl=" pdl=1"), line(4096, 1, 1, 4, 9.0, fp8=1)])
    new = "\n".join(["# NVIDIA H200, 2026-11-30T20:00:00Z, commit bbb", line(6144, 1, 1, 4, 14.5),
                     line(6144, 1, 1, 8, 16.1)])
    t = mk.make_table([("old", old), ("new", new)], (9, 0))
    assert t["device"] == "NVIDIA H200" and t["date"] == "2026-11-30T20:00:00Z"
    assert t["mmasp_cfg"] == {"bf16,cols,6144,4096,0.25,1": [1, 4],  # the newer file's cell
                              "bf16,cols,6144,4096,0.25,16": [1, 4]}  # pdl left out; fp8: one config only
    with pytest.raises(ValueError):
        mk.make_table([("x", line(1, 1, 1, 4, 1.0))], (9, 0))  # no header
    # the packaged H200 table, on a (faked) H200 only, and a cache measured on the GPU wins over it
    monkeypatch.setenv("SPENSE_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    at._DEVICE_TABLES.clear()
    src, table = at.table_for(torch.device("cuda", 0))
    assert src == "cfg" and table["device"] == "NVIDIA H200" and "choice" not in table
    qkv = SimpleNamespace(scale=None, values=torch.empty(0, dtype=torch.bfloat16), out_features=6144,
                          in_features=4096, layout=SimpleNamespace(axis="cols", dense_ratio=0.25))
    assert at.default_mmasp_cfg(qkv, 32, table) == (1, 4)  # 8 warps ran 47 % slower there (quick_c54974e)
    assert at.default_choice(qkv, 1, table) == "mmasp" and at.default_choice(qkv, 32, table) == "dense"
    assert at.packaged_cfg_table("NVIDIA H100 80GB HBM3", (9, 0)) is None
    at._DEVICE_TABLES.clear()
