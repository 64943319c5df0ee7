"""``spense::decode_attention``: the split-KV kernels against the float32 formula (CPU, under
TRITON_INTERPRET=1 in a subprocess), the op's checks (opcheck, fake), the split rule, and on the GPU
(``gpu``) bf16 against the reference on cache slices, eager and compiled.  ``spense::decode_attention_fused``
(norms, RoPE and the cache writes in the split kernel) likewise, and against the module's own path."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spense.runtime.attention import (BLOCK, MAX_PROGRAMS, decode_attention, decode_attention_fused,
                                      decode_attention_reference, split_length)

SRC = str(Path(__file__).resolve().parents[1] / "src")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
# the fused split kernel's switches (EARLY_KV, SLOT_READ, EARLY_PRO) the same-bits tests run, the first none
SETTINGS = ((False, False, False), (True, False, False), (False, True, False), (True, True, False), (True, True, True),
            (False, False, True))


def _case(B, H, G, D, L, S, gen, device="cpu", dtype=torch.float32):
    """q and cache slices k, v = cache[:, :, :L] of a cache of S slots; row b left-padded by 3b keys and,
    for b > 0, its last 2b keys masked too (the last key of row 0 always visible)."""
    q = torch.randn(B, H, G, D, generator=gen).to(device, dtype)
    kc = torch.randn(B, H, S, D, generator=gen).to(device, dtype)
    vc = torch.randn(B, H, S, D, generator=gen).to(device, dtype)
    mask = torch.zeros(B, L)
    for b in range(B):
        mask[b, : 3 * b] = float("-inf")
        if b:
            mask[b, L - 2 * b:] = float("-inf")
    return q, kc[:, :, :L], vc[:, :, :L], mask.to(device)


_INTERP = textwrap.dedent("""
    import torch
    from spense.runtime.attention import launch_decode_attention, decode_attention_reference
    from test_attention import _case
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for B, H, G, D, L, S, split in [(2, 2, 4, 32, 100, 128, 32), (1, 3, 1, 16, 64, 64, None),
                                    (3, 1, 5, 32, 70, 96, 64), (12, 1, 2, 16, 1100, 1100, 32),
                                    (2, 2, 4, 32, 300, 320, 96)]:  # a split of 3 blocks (SPLIT_BALANCE's kind)
        q, k, v, mask = _case(B, H, G, D, L, S, gen)
        y = launch_decode_attention(q, k, v, mask, split)
        worst = max(worst, (y - decode_attention_reference(q, k, v, mask)).abs().max().item())
    print("WORST", worst)
""")


def _interpreted_worst(script: str) -> float:
    """Run ``script`` under ``TRITON_INTERPRET=1`` in a subprocess; the number it prints after ``WORST``."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=os.pathsep.join([SRC, str(Path(__file__).parent)]))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=170)
    if r.returncode and "interpret" in r.stderr.lower() and "not supported" in r.stderr.lower():
        pytest.skip("this Triton's interpreter lacks a feature the kernels use")
    assert r.returncode == 0, r.stderr[-2000:]
    return float(r.stdout.split("WORST")[-1])


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    """``python -c code`` with ``src`` on the path and ``env`` set: switches read at import."""
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=SRC, **env),
                          capture_output=True, text=True, timeout=120)


def test_split_kernels_interpreted():
    """The last case has 35 splits (two merge chunks) and a row whose first split is wholly masked."""
    assert _interpreted_worst(_INTERP) < 1e-5


_INTERP_LAUNCH = textwrap.dedent("""
    import torch
    from spense.runtime import attention
    from test_attention import _case
    gen = torch.Generator().manual_seed(5)
    worst = 0.0
    for blk, warps, stages in ((64, 8, 1), (128, 4, 3)):  # what benchmarks/attn_bench.py sets
        attention.BLOCK, attention.SPLIT_WARPS, attention.SPLIT_STAGES = blk, warps, stages
        for B, H, G, D, L, S in [(2, 2, 4, 32, 300, 320), (1, 1, 2, 16, 70, 96)]:
            q, k, v, mask = _case(B, H, G, D, L, S, gen)
            y = attention.launch_decode_attention(q, k, v, mask)
            worst = max(worst, (y - attention.decode_attention_reference(q, k, v, mask)).abs().max().item())
    print("WORST", worst)
""")


def test_split_kernel_launch_settings_interpreted():
    """The split kernel's launch as benchmarks/attn_bench.py sweeps it (keys per block, warps, stages, set on the
    module) gives the reference's output.  The interpreter ignores warps and stages, so this checks the block sizes
    (and that the launch takes the other two settings)."""
    assert _interpreted_worst(_INTERP_LAUNCH) < 1e-5


def _fused_case(B, Bc, H, G, D, L, S, pos, norm, gen, device="cpu", dtype=torch.float32):
    """Raw q (B, H, G, D), new k, v (B, H, D), norm weights (or None), RoPE tables (B, D) of positions pos - b,
    caches of Bc >= B rows and S slots, slot pos (a tensor), mask (B, L): row b sees keys min(b, pos) .. pos."""
    t = lambda *shape: torch.randn(*shape, generator=gen).to(device, dtype)  # noqa: E731
    q, k, v, kc, vc = t(B, H, G, D), t(B, H, D), t(B, H, D), t(Bc, H, S, D), t(Bc, H, S, D)
    qw, kw = (1 + 0.3 * t(D), 1 + 0.3 * t(D)) if norm else (None, None)
    inv = 1.0 / (1e4 ** (torch.arange(0, D, 2) / D))
    ang = (pos - torch.arange(B))[:, None].float() * inv
    ang = torch.cat((ang, ang), -1).to(device)
    mask = torch.zeros(B, L)
    for b in range(B):
        mask[b, :min(b, pos)] = float("-inf")
        mask[b, pos + 1:] = float("-inf")
    return q, k, v, qw, kw, ang.cos(), ang.sin(), kc, vc, torch.tensor([pos], device=device), mask.to(device)


_INTERP_FUSED = textwrap.dedent("""
    import torch
    from spense.runtime.attention import launch_decode_attention, decode_attention_fused
    from test_attention import _fused_case
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for B, Bc, H, G, D, L, S, pos, split, norm in [(2, 3, 2, 4, 32, 100, 128, 70, 32, True),
                                                   (1, 1, 3, 1, 16, 64, 64, 63, None, False),
                                                   (3, 3, 1, 5, 32, 70, 96, 2, 64, True)]:
        q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(B, Bc, H, G, D, L, S, pos, norm, gen)
        kr, vr = kc.clone(), vc.clone()
        y = launch_decode_attention(q, kc[:B, :, :L], vc[:B, :, :L], mask, split,
                                    fused=(k, v, qw, kw, cos, sin, p, 1e-6))
        yr = decode_attention_fused(q, k, v, qw, kw, cos, sin, kr, vr, p, mask, 1e-6)
        assert torch.equal(kc[:, :, torch.arange(S) != pos], kr[:, :, torch.arange(S) != pos])  # one slot written
        assert torch.equal(kc[B:], kr[B:]) and torch.equal(vc, vr)  # rows past B untouched; v as given
        worst = max(worst, (y - yr).abs().max().item(), (kc - kr).abs().max().item())
    # strides Inductor may pass under the ops' flexible layout: sin's rows apart from cos's, cos broadcast over
    # the rows, a norm weight and the mask not contiguous, q a view at an offset
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(2, 2, 2, 4, 32, 100, 128, 70, True, gen)
    sin = torch.cat((sin, torch.zeros_like(sin)), -1)[:, :32]
    cos = cos[:1].expand(2, 32)
    qw = torch.stack((qw, torch.zeros_like(qw)), -1)[:, 0]
    mask = torch.stack((mask, mask), -1)[..., 0]
    q = torch.cat((torch.zeros(2, 2, 1, 32), q), 2)[:, :, 1:]
    kr, vr = kc.clone(), vc.clone()
    y = launch_decode_attention(q, kc[:, :, :100], vc[:, :, :100], mask, 32, fused=(k, v, qw, kw, cos, sin, p, 1e-6))
    yr = decode_attention_fused(q, k, v, qw, kw, cos, sin, kr, vr, p, mask, 1e-6)
    worst = max(worst, (y - yr).abs().max().item(), (kc - kr).abs().max().item())
    # a sliding layer's step: the caches from slot 128 on (a view at an offset), its new slot counted from there
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(2, 2, 2, 4, 32, 100, 256, 70, True, gen)
    k0, kr, vr = kc.clone(), kc.clone(), vc.clone()
    y = launch_decode_attention(q, kc[:, :, 128:228], vc[:, :, 128:228], mask, 32, fused=(k, v, qw, kw, cos, sin, p,
                                1e-6))
    yr = decode_attention_fused(q, k, v, qw, kw, cos, sin, kr[:, :, 128:], vr[:, :, 128:], p, mask, 1e-6)
    other = torch.arange(256) != 198  # slot 128 + 70 written, in both, and no other
    assert torch.equal(kc[:, :, other], k0[:, :, other]) and torch.equal(kr[:, :, other], k0[:, :, other])
    assert not torch.equal(kc[:, :, 198], k0[:, :, 198])
    worst = max(worst, (y - yr).abs().max().item(), (kc - kr).abs().max().item(), (vc - vr).abs().max().item())
    # fp16 (the interpreter rounds to it as the GPU does): the written key's bits are the reference's
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(2, 3, 2, 4, 32, 100, 128, 70, True, gen,
                                                              dtype=torch.float16)
    kr, vr = kc.clone(), vc.clone()
    y = launch_decode_attention(q, kc[:2, :, :100], vc[:2, :, :100], mask, 32, fused=(k, v, qw, kw, cos, sin, p, 1e-6))
    yr = decode_attention_fused(q, k, v, qw, kw, cos, sin, kr, vr, p, mask, 1e-6)
    assert torch.equal(kc, kr) and torch.equal(vc, vr)
    assert (y.float() - yr.float()).abs().max().item() < 2e-3
    print("WORST", worst)
""")


def test_fused_kernel_interpreted():
    """Norms on and off, slot pos in a middle split, the last slot, the first split; a cache of more rows; inputs
    of other strides (sin's rows apart from cos's, cos broadcast, a strided norm weight and mask); fp16."""
    assert _interpreted_worst(_INTERP_FUSED) < 1e-5


_INTERP_EARLY = textwrap.dedent("""
    import torch
    from spense.runtime import attention
    from test_attention import _fused_case, SETTINGS
    gen = torch.Generator().manual_seed(7)
    n = 0
    # splits of one block and of three; the slot in a split's first block (70 of 64..95) and in a later one (40 of
    # 0..95); the last split's first block partly past L (100 keys)
    for B, Bc, L, pos, split, norm in ((1, 1, 100, 70, 32, True), (3, 4, 100, 70, 96, True), (2, 2, 100, 40, 96, True),
                                       (2, 2, 66, 65, 64, True), (2, 2, 66, 3, 64, False)):
        q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(B, Bc, 2, 4, 32, L, 128, pos, norm, gen,
                                                                  dtype=torch.float16)
        outs = []
        for attention.EARLY_KV, attention.SLOT_READ, attention.EARLY_PRO in SETTINGS:
            k2, v2 = kc.clone(), vc.clone()
            y = attention.launch_decode_attention(q, k2[:B, :, :L], v2[:B, :, :L], mask, split,
                                                  fused=(k, v, qw, kw, cos, sin, p, 1e-6))
            outs.append((y, k2, v2))
        for o in outs[1:]:
            assert all(torch.equal(a, b) for a, b in zip(outs[0], o)), (B, L, pos, split)
        n += 1
    print("WORST", 0.0 if n == 5 else 1.0)
""")


def test_fused_kernel_early_kv_and_slot_read_same_bits_interpreted():
    """SPENSE_ATTN_EARLY_KV (the first block of keys and values read before the wait), SPENSE_ATTN_SLOT_READ (the
    new slot read back from the cache, not put in place of the loaded tiles), SPENSE_ATTN_EARLY_PRO (the RoPE rows,
    norm weights and slot read before the wait) give the bits of the kernel without any, y and the caches, with the
    new slot in a split's first block or a later one, a first block past L, and norms on and off.  The
    interpreter runs a program's threads as one, so SLOT_READ's barrier is checked on the GPU only (by the GPU test, and
    there only as far as a missing one would show as a race)."""
    assert _interpreted_worst(_INTERP_EARLY) == 0.0


def test_fused_op_checks_and_module_path():
    """opcheck (the cache mutation declared), and the op (CPU, bf16) equals the module's own decode path: its
    RMSNorm modules and ``rotate_half`` on q and k, ``index_copy_`` into the caches, then :func:`decode_attention`."""
    from spense.engine.model import RMSNorm, rotate_half

    def module_path(x, w, cos, sin):
        if w is not None:
            norm = RMSNorm(x.shape[-1], 1e-6).to(x.dtype)
            norm.weight.data = w
            x = norm(x)
        return (x * cos + rotate_half(x) * sin).to(x.dtype)

    gen = torch.Generator().manual_seed(3)
    for norm in (True, False):
        q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(2, 3, 2, 4, 16, 40, 48, 37, norm, gen,
                                                                  dtype=torch.bfloat16)
        torch.library.opcheck(decode_attention_fused, (q, k, v, qw, kw, cos, sin, kc.clone(), vc.clone(), p, mask,
                                                       1e-6))
        kr, vr = kc.clone(), vc.clone()
        y = decode_attention_fused(q, k, v, qw, kw, cos, sin, kc, vc, p, mask, 1e-6)
        qn = module_path(q, qw, cos[:, None, None], sin[:, None, None])
        kr[:2, :, 37] = module_path(k, kw, cos[:, None], sin[:, None])
        vr[:2, :, 37] = v
        assert torch.equal(kc, kr) and torch.equal(vc, vr)
        assert torch.equal(y, decode_attention(qn, kr[:2, :, :40], vr[:2, :, :40], mask))


_INTERP_FORMS = textwrap.dedent("""
    import torch
    from spense.runtime.attention import launch_decode_attention
    from spense.runtime.attn_forms import as_form
    from test_attention import _fused_case
    gen = torch.Generator().manual_seed(5)
    n = 0
    for B, forms in ((1, (1, 4, 5)), (3, (1, 4, 5)), (8, (1, 2, 4, 5, 6))):
        case = _fused_case(B, B, 2, 4, 32, 100, 128, 70, True, gen, dtype=torch.bfloat16)
        q, k, v, qw, kw, cos, sin, kc, vc, p, mask = case
        y0 = launch_decode_attention(q, kc.clone()[:, :, :100], vc.clone()[:, :, :100], mask, 32,
                                     fused=(k, v, qw, kw, cos, sin, p, 1e-6))
        for form in forms:
            y = launch_decode_attention(q, kc.clone()[:, :, :100], vc.clone()[:, :, :100], mask, 32,
                                        fused=(k, v, qw, kw, cos, sin, p, 1e-6), form=form)
            want = as_form(y0, form)
            assert y.shape == want.shape and y.dtype == want.dtype, (form, y.shape, want.shape, y.dtype)
            assert torch.equal(y, want), form
            n += 1
            yp = launch_decode_attention(q, kc[:, :, :100], vc[:, :, :100], mask, 32, form=form)  # the plain kernel
            assert torch.equal(yp, as_form(launch_decode_attention(q, kc[:, :, :100], vc[:, :, :100], mask, 32),
                                           form)), ("plain", form)
            n += 1
    print("WORST", 0.0 if n == 22 else 1.0)
""")


def test_fused_kernel_writes_the_operand_forms_interpreted():
    """The merge kernel's stores in the next linear's operand forms (x_perm order, fragments of 8 tokens, each in
    bf16 or as x's f16 operand; the f16 operand in y's layout) are the bits of the plain output put through the tensor
    ops they replace (``as_form``: xops.x_perm, x_fragments, f16_operand), after the fused split kernel and after the
    plain one (``spense::decode_attention``'s, which Gemma's decode steps take)"""
    assert _interpreted_worst(_INTERP_FORMS) == 0.0


def test_operand_forms_on_cpu_fake_and_refusals():
    """The op's CPU path returns ``as_form`` of its plain output, its fake the same shape and dtype (opcheck);
    an unknown form, a row not a multiple of 64 and fragments of other than 8 tokens are refused"""
    from spense.runtime.attn_forms import as_form

    gen = torch.Generator().manual_seed(4)
    for B, form in ((8, 6), (8, 2), (2, 5), (2, 1), (2, 4)):
        case = _fused_case(B, B, 2, 4, 32, 40, 48, 37, True, gen, dtype=torch.bfloat16)
        q, k, v, qw, kw, cos, sin, kc, vc, p, mask = case
        torch.library.opcheck(decode_attention_fused, (q, k, v, qw, kw, cos, sin, kc.clone(), vc.clone(), p, mask,
                                                       1e-6, form))
        y0 = decode_attention_fused(q, k, v, qw, kw, cos, sin, kc.clone(), vc.clone(), p, mask, 1e-6)
        y = decode_attention_fused(q, k, v, qw, kw, cos, sin, kc.clone(), vc.clone(), p, mask, 1e-6, form)
        assert torch.equal(y, as_form(y0, form))
        torch.library.opcheck(decode_attention, (q, kc[:B, :, :40], vc[:B, :, :40], mask, form))
        yp = decode_attention(q, kc[:B, :, :40], vc[:B, :, :40], mask, form)
        assert torch.equal(yp, as_form(decode_attention(q, kc[:B, :, :40], vc[:B, :, :40], mask), form))
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(2, 2, 1, 2, 16, 40, 48, 37, True, gen,
                                                              dtype=torch.bfloat16)  # rows of 32
    for form, msg in ((3, "unknown output form"), (1, "multiple of 64"), (6, "multiple of 64")):
        with pytest.raises(ValueError, match=msg):
            decode_attention_fused(q, k, v, qw, kw, cos, sin, kc, vc, p, mask, 1e-6, form)
        with pytest.raises(ValueError, match=msg):
            decode_attention(q, kc[:2, :, :40], vc[:2, :, :40], mask, form)
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(2, 2, 2, 4, 32, 40, 48, 37, True, gen,
                                                              dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="for 8 tokens"):
        decode_attention_fused(q, k, v, qw, kw, cos, sin, kc, vc, p, mask, 1e-6, 2)
    with pytest.raises(ValueError, match="made from bf16"):  # float32 y
        decode_attention_fused(*(t.float() if t.is_floating_point() else t for t in (q, k, v, qw, kw)), cos, sin,
                               kc.float(), vc.float(), p, mask, 1e-6, 1)


def test_op_checks_and_reference_formula():
    gen = torch.Generator().manual_seed(1)
    q, k, v, mask = _case(2, 2, 4, 16, 40, 48, gen)
    torch.library.opcheck(decode_attention, (q, k, v, mask))
    # the reference is SDPA's attention with the mask broadcast over heads and query rows
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    assert torch.allclose(decode_attention(q, k, v, mask), sdpa, atol=1e-5)


def test_split_length_rule(monkeypatch):
    """The rule without SPLIT_BALANCE: the smallest power-of-two multiple of BLOCK within MAX_PROGRAMS."""
    from spense.runtime import attention

    monkeypatch.setattr(attention, "SPLIT_BALANCE", False)
    assert split_length(1, 8, 640) == BLOCK
    for B, H, L in [(1, 8, 640), (8, 8, 640), (32, 8, 4096), (64, 8, 32768), (1, 1, 10)]:
        s = split_length(B, H, L)
        assert s % BLOCK == 0 and (B * H * -(-L // s) <= MAX_PROGRAMS or s >= L)
        assert s == BLOCK or B * H * -(-L // (s // 2)) > MAX_PROGRAMS  # the smallest such split


def test_balanced_split_rule(monkeypatch):
    """SPENSE_ATTN_SPLIT_BALANCE (the default): no more splits than the plain rule's, whole blocks, each as short as
    covering L in that many allows (B = 32, 8 KV heads, 640 keys: 2 splits of 320 in place of 512 + 128)"""
    from spense.runtime import attention

    cases = [(1, 8, 640), (8, 8, 576), (16, 8, 640), (32, 8, 640), (64, 8, 32768), (12, 1, 1100), (1, 1, 10)]
    monkeypatch.setattr(attention, "SPLIT_BALANCE", False)
    plain = {c: split_length(*c) for c in cases}
    monkeypatch.setattr(attention, "SPLIT_BALANCE", True)
    assert split_length(32, 8, 640) == 320 and split_length(16, 8, 640) == 224
    for (B, H, L), s0 in plain.items():
        s = split_length(B, H, L)
        ns = -(-L // s0)
        assert s % BLOCK == 0 and s <= s0 and -(-L // s) <= ns, (B, H, L, s, s0)
        assert (s - BLOCK) * ns < L, (B, H, L, s)  # one block less would not cover L in ns splits


def test_split_rule_follows_its_switch():
    """SPENSE_ATTN_MAX_PROGRAMS (read at import): at B = 1, 8 KV heads and 640 keys, 512 programs give splits of 32
    keys, 128 of 64 and 64 of 128; a value that is not a positive integer is refused in one line.  So is
    SPENSE_ATTN_SPLIT_BALANCE's (read at import too): at B = 32 and 640 keys, 320-key splits with it, 512 without"""
    def split_at(v, var="SPENSE_ATTN_MAX_PROGRAMS", B=1):
        return _run_python(f"from spense.runtime.attention import split_length; print(split_length({B}, 8, 640))",
                           **{var: v})

    for v, want in (("512", 32), ("128", 64), ("64", 128)):
        r = split_at(v)
        assert r.returncode == 0 and int(r.stdout.strip()) == want, (v, r.stdout, r.stderr[-500:])
    r = split_at("0")
    assert r.returncode != 0 and "SPENSE_ATTN_MAX_PROGRAMS must be >= 1, got 0" in r.stderr
    for v, want in (("1", "320"), ("0", "512")):
        r = split_at(v, "SPENSE_ATTN_SPLIT_BALANCE", 32)
        assert r.returncode == 0 and r.stdout.strip() == want, (v, r.stdout, r.stderr[-500:])
    r = split_at("yes", "SPENSE_ATTN_SPLIT_BALANCE", 32)
    assert r.returncode != 0 and "SPENSE_ATTN_SPLIT_BALANCE='yes': give 0 or 1" in r.stderr


def test_register_cap_and_stages_switches_read_at_import():
    """SPENSE_ATTN_MAXNREG (0..255; default 128) and SPENSE_ATTN_STAGES (0..8; default 2, 0: Triton's default, None)
    set the module's settings at import; a value outside its range is refused in one line."""
    def read(**env):
        return _run_python("from spense.runtime import attention as a; print(a.SPLIT_MAXNREG, a.SPLIT_STAGES)", **env)

    r = read()
    assert r.returncode == 0 and r.stdout.split() == ["128", "2"], r.stderr[-500:]
    r = read(SPENSE_ATTN_MAXNREG="0", SPENSE_ATTN_STAGES="0")
    assert r.returncode == 0 and r.stdout.split() == ["0", "None"], r.stderr[-500:]
    r = read(SPENSE_ATTN_STAGES="9")
    assert r.returncode != 0 and "SPENSE_ATTN_STAGES must be in 0..8, got 9" in r.stderr
    r = read(SPENSE_ATTN_MAXNREG="256")
    assert r.returncode != 0 and "SPENSE_ATTN_MAXNREG must be in 0..255, got 256" in r.stderr


def test_pdl_is_on_unless_switched_off_or_interpreted(monkeypatch):
    from spense.runtime.attention import pdl_on

    monkeypatch.setenv("SPENSE_ATTN_PDL", "0")
    assert not pdl_on(torch.device("cuda"))  # switched off: the device is not even asked
    monkeypatch.delenv("SPENSE_ATTN_PDL")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert not pdl_on(torch.device("cuda"))
    monkeypatch.delenv("TRITON_INTERPRET")
    assert not pdl_on(torch.device("cpu"))  # on by default, where the device has it
    if torch.cuda.is_available():
        assert pdl_on(torch.device("cuda")) == (torch.cuda.get_device_capability()[0] >= 9)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("pdl", ["0", "1"])
@pytest.mark.parametrize("B,L", [(1, 640), (8, 640), (32, 1024), (3, 77)])
def test_gpu_decode_attention_bf16_eager_and_compiled(B, L, pdl, monkeypatch):
    """Eager and compiled, with and without SPENSE_ATTN_PDL (dependent launch of both kernels)."""
    monkeypatch.setenv("SPENSE_ATTN_PDL", pdl)
    gen = torch.Generator().manual_seed(B)
    q, k, v, mask = _case(B, 8, 4, 128, L, L + 64, gen, "cuda", torch.bfloat16)
    ref = decode_attention_reference(q.double(), k.double(), v.double(), mask.double()).float()
    f = torch.compile(lambda *a: decode_attention(*a) * 1, fullgraph=True)
    for y in (decode_attention(q, k, v, mask), f(q, k, v, mask)):
        assert ((y.float() - ref).norm() / ref.norm()).item() < 1e-2


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("B,L", [(1, 640), (8, 1024)])
def test_gpu_decode_attention_head_dim_256_sliding_window(B, L):
    """Gemma-3-270M's attention (1 KV head of 4 queries, head dim 256) over a sliding layer's mask: only the last 512
    keys of each row visible, so that most splits see no key at all."""
    gen = torch.Generator().manual_seed(B)
    q, k, v, mask = _case(B, 1, 4, 256, L, L, gen, "cuda", torch.bfloat16)
    mask[:, : L - 512] = float("-inf")
    ref = decode_attention_reference(q.double(), k.double(), v.double(), mask.double()).float()
    f = torch.compile(lambda *a: decode_attention(*a) * 1, fullgraph=True)
    for y in (decode_attention(q, k, v, mask), f(q, k, v, mask)):
        assert ((y.float() - ref).norm() / ref.norm()).item() < 1e-2


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("B,L,pos", [(1, 640, 600), (8, 640, 639), (32, 1024, 100), (3, 128, 0)])
def test_gpu_decode_attention_fused_bf16_eager_and_compiled(B, L, pos):
    """bf16, eager and compiled: y against the float64 formulas, the written slot against the reference's."""
    from spense.runtime.attention import norm_rope_reference

    gen = torch.Generator().manual_seed(B)
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(B, B + 1, 8, 4, 128, L, L + 64, pos, True, gen,
                                                              "cuda", torch.bfloat16)
    kn = norm_rope_reference(k, kw, cos[:, None], sin[:, None], 1e-6)
    f = torch.compile(lambda *a: decode_attention_fused(*a) * 1, fullgraph=True)
    other = torch.arange(kc.shape[2], device="cuda") != pos
    for run in (decode_attention_fused, f):
        kc2, vc2 = kc.clone(), vc.clone()
        y = run(q, k, v, qw, kw, cos, sin, kc2, vc2, p, mask, 1e-6)
        d = (kc2[:B, :, pos].float() - kn.float()).abs()
        assert (d <= 2 ** -7 * kn.float().abs() + 1e-30).all()  # at most one bf16 ulp from the reference's key
        assert torch.equal(vc2[:B, :, pos], v) and torch.equal(kc2[B:], kc[B:])
        assert torch.equal(kc2[:, :, other], kc[:, :, other]) and torch.equal(vc2[:, :, other], vc[:, :, other])
        qn = norm_rope_reference(q, qw, cos[:, None, None], sin[:, None, None], 1e-6)
        ref = decode_attention_reference(qn.double(), kc2[:B, :, :L].double(), vc2[:B, :, :L].double(),
                                         mask.double()).float()
        assert ((y.float() - ref).norm() / ref.norm()).item() < 1e-2


@pytest.mark.parametrize("fused", ["1", "0"])
def test_compiled_decode_step_computes_rope_rows_and_mask_once(fused, monkeypatch, request):
    """Every layer's attention op gets the same buffers (fused: RoPE rows and mask; plain: the mask): under
    Inductor's default for custom ops (exact strides) each call got copies of its own, one more kernel per one
    or two layers on the GPU."""
    import re
    import warnings

    from torch._inductor.utils import run_and_get_code

    from spense.engine import load
    from spense.engine.generate import decode_step
    from spense.runtime.attention import FLEXIBLE, fused_on

    if not FLEXIBLE:
        pytest.skip("SPENSE_ATTN_FLEXIBLE=0: the ops under Inductor's default layout for custom ops")
    monkeypatch.setenv("SPENSE_ATTN_FUSED", fused)
    fused_on.cache_clear()
    request.addfinalizer(fused_on.cache_clear)
    m = load("qwen3-tiny", torch.device("cpu"), torch.float32).model
    m.setup_caches(2, 128)
    m.set_attention("split")
    # a cached graph from before the ops' layout tag would hide the change (the cache key leaves tags out)
    with torch.no_grad(), warnings.catch_warnings(), torch._inductor.config.patch(fx_graph_cache=False):
        warnings.simplefilter("ignore")
        _, codes = run_and_get_code(torch.compile(decode_step, fullgraph=True), m, torch.tensor([[3], [4]]),
                                    torch.tensor([5]), torch.zeros(2, dtype=torch.long), 128, 0.0, 1.0)
    op = "decode_attention_fused" if fused == "1" else "decode_attention"
    calls = re.findall(rf"torch\.ops\.spense\.{op}\.default\((.*)\)\n", "\n".join(codes))
    assert len(calls) == m.args.n_layer >= 2
    # the buffers past the projections (the fused op's q, k, v; the plain op's q): RoPE rows and mask
    names = [re.findall(r"buf\d+", c) for c in calls]
    shared = [n[3:] if fused == "1" else n[1:] for n in names]
    assert len(shared[0]) == (3 if fused == "1" else 1), calls
    assert all(s == shared[0] for s in shared), calls


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("B,L,pos,norm", [(1, 640, 600, True), (8, 640, 639, True), (32, 640, 100, True),
                                          (8, 640, 639, False)])
def test_gpu_fused_early_kv_and_slot_read_same_bits(B, L, pos, norm, monkeypatch):
    """SPENSE_ATTN_EARLY_KV, SLOT_READ, EARLY_PRO, MAXNREG and STAGES on the GPU (dependent launch where the device
    has it): y and both caches bit for bit those of the kernel without any (no cap, Triton's stages); with the q / k
    norms and without (a model whose attention has none: EARLY_PRO then loads no norm weights)."""
    from spense.runtime import attention

    gen = torch.Generator().manual_seed(B)
    case = _fused_case(B, B, 8, 4, 128, L, L + 64, pos, norm, gen, "cuda", torch.bfloat16)
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = case
    outs = []
    for (early, slot_read, pro), cap, stages in [(s, 0, None) for s in SETTINGS] + [
            ((True, True, False), 128, 2), ((True, True, False), 168, None), ((True, True, False), 0, 4),
            ((False, True, False), 128, 2)]:
        monkeypatch.setattr(attention, "EARLY_KV", early)
        monkeypatch.setattr(attention, "SLOT_READ", slot_read)
        monkeypatch.setattr(attention, "EARLY_PRO", pro)
        monkeypatch.setattr(attention, "SPLIT_MAXNREG", cap)  # a register cap (SPENSE_ATTN_MAXNREG): the same bits
        monkeypatch.setattr(attention, "SPLIT_STAGES", stages)  # the pipeline's depth (SPENSE_ATTN_STAGES): the same
        kc2, vc2 = kc.clone(), vc.clone()
        y = attention.launch_decode_attention(q, kc2[:, :, :L], vc2[:, :, :L], mask,
                                              fused=(k, v, qw, kw, cos, sin, p, 1e-6))
        outs.append((y, kc2, vc2))
    for o in outs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(outs[0], o))
