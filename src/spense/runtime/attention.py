"""Decode attention (one new token per row) as a split-KV Triton kernel: the custom op
``spense::decode_attention``.

``y[b, h, g] = sum_j softmax_j(q[b, h, g] . k[b, h, j] / sqrt(D) + mask[b, j]) v[b, h, j]``

with ``q`` ``(B, H, G, D)`` (``G`` query heads per KV head, grouped-query attention folded into the
query length), ``k, v`` ``(B, H, L, D)`` (any strides with a contiguous last dim: a slice of the
static cache), ``mask`` ``(B, L)`` additive (0 or -inf, every row with at least one 0).

The ``L`` keys are cut into ``S`` splits of ``SPLIT`` keys (flash-decoding).  Program ``(b*H+h, s)``
keeps the running max ``m``, sum ``l`` and unnormalised output ``o`` of its split in float32 (scores
``q k^T`` and ``p v`` on tensor cores in the input dtype, ``p`` rounded to it); a second kernel
merges the splits: ``M = max_s m_s``, ``y = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s``, one
program per query row, 32 splits per load.  So K and V are read once, in their own dtype, by
``B*H*S`` programs (the math backend of SDPA copies them to float32 first, every layer and step).

CUDA: the kernels; CPU: the same formula in float32 (the reference; the kernels themselves run on
CPU under ``TRITON_INTERPRET=1``).  A fake implementation lets ``torch.compile`` trace it.

On sm_90+ both kernels launch with programmatic dependent launch (``SPENSE_ATTN_PDL=0``: plainly), wait
(``gdc_wait``) before their first load, then let the kernel after them launch: the split kernel may start
while the kernel that wrote q and the cache finishes, and the merge while the split kernel runs (the
engine's Inductor kernels are launched so too: ``Engine.pdl``).  On by default since results as of
2026-12-02 (Qwen3-8B shape, FP8, H200): the dense FP8 step 3.587 -> 3.482 ms at batch 1 and 3.934 -> 3.855
at batch 8, Spense 25 % FP8 2.929 -> 2.889 and 3.342 -> 3.226 (its other change, the one-launch split-K,
touches only the dense model).
"""

from __future__ import annotations

import os

import torch

try:  # Triton is only needed on CUDA
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - no triton
    triton = None
    tl = None

BLOCK = 32  # keys per inner step
MAX_PROGRAMS = 512  # splits grow (x2) until B * H * S is at most this


if triton is not None:

    @triton.jit
    def _decode_attn_split(q_ptr, k_ptr, v_ptr, m_ptr, o_ptr, ml_ptr, L, G, H, NS, scale,
                           sqb, sqh, sqg, skb, skh, skl, svb, svh, svl, smb,
                           D: tl.constexpr, GP: tl.constexpr, BLOCK: tl.constexpr, SPLIT: tl.constexpr,
                           DOT_DT: tl.constexpr, PDL: tl.constexpr = False):
        if PDL:  # q and the cache are written by the kernel before: wait for it, then free the next one
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        bh = tl.program_id(0)
        s = tl.program_id(1)
        b = (bh // H).to(tl.int64)  # 64-bit offsets: a large cache passes 2^31 elements
        h = (bh % H).to(tl.int64)
        rg = tl.arange(0, GP)
        rd = tl.arange(0, D)
        q = tl.load(q_ptr + b * sqb + h * sqh + rg[:, None] * sqg + rd[None, :], mask=rg[:, None] < G, other=0.0)
        q = q.to(DOT_DT)
        m_i = tl.full([GP], float("-inf"), tl.float32)
        l_i = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, D], tl.float32)
        lo = s * SPLIT
        for j0 in range(0, SPLIT, BLOCK):
            rj = lo + j0 + tl.arange(0, BLOCK)
            jm = rj < L
            k = tl.load(k_ptr + b * skb + h * skh + rj[:, None] * skl + rd[None, :], mask=jm[:, None], other=0.0)
            sc = tl.dot(q, tl.trans(k.to(DOT_DT))) * scale
            sc = sc + tl.load(m_ptr + b * smb + rj, mask=jm, other=float("-inf"))[None, :]
            m_new = tl.maximum(m_i, tl.max(sc, 1))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # a split with no key yet: no NaN
            p = tl.exp(sc - m_use[:, None])
            alpha = tl.exp(m_i - m_use)
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(v_ptr + b * svb + h * svh + rj[:, None] * svl + rd[None, :], mask=jm[:, None], other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p.to(DOT_DT), v.to(DOT_DT))
            m_i = m_new
        base = bh * NS + s
        tl.store(o_ptr + (base * GP + rg[:, None]) * D + rd[None, :], acc)
        tl.store(ml_ptr + (base * 2) * GP + rg, m_i)
        tl.store(ml_ptr + (base * 2 + 1) * GP + rg, l_i)

    @triton.jit
    def _decode_attn_merge(o_ptr, ml_ptr, y_ptr, G, H, NS, syb, syh, syg,
                           D: tl.constexpr, GP: tl.constexpr, SB: tl.constexpr, PDL: tl.constexpr = False):
        # program (b*H+h, g): query row g, its NS splits merged SB at a time (a [SB, D] tile per load,
        # a running max across the chunks), so no program walks the splits one load after another
        if PDL:
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        bh = tl.program_id(0)
        g = tl.program_id(1)
        b = (bh // H).to(tl.int64)
        h = (bh % H).to(tl.int64)
        rd = tl.arange(0, D)
        rs = tl.arange(0, SB)
        m_run = tl.max(tl.full([SB], float("-inf"), tl.float32), axis=0)
        den = tl.sum(tl.zeros([SB], tl.float32), axis=0)
        acc = tl.zeros([D], tl.float32)
        for s0 in range(0, NS, SB):
            sm = s0 + rs < NS
            base = (bh * NS + s0 + rs).to(tl.int64)
            m = tl.load(ml_ptr + base * 2 * GP + g, mask=sm, other=float("-inf"))
            lsum = tl.load(ml_ptr + (base * 2 + 1) * GP + g, mask=sm, other=0.0)
            o = tl.load(o_ptr + (base[:, None] * GP + g) * D + rd[None, :], mask=sm[:, None], other=0.0)
            m_new = tl.maximum(m_run, tl.max(m, axis=0))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # no key in any split so far: no NaN
            alpha = tl.exp(m_run - m_use)
            w = tl.exp(m - m_use)
            den = den * alpha + tl.sum(w * lsum, axis=0)
            acc = acc * alpha + tl.sum(w[:, None] * o, axis=0)
            m_run = m_new
        out = acc / tl.where(den > 0, den, 1.0)
        tl.store(y_ptr + b * syb + h * syh + g * syg + rd, out.to(y_ptr.dtype.element_ty))


def split_length(B: int, H: int, L: int) -> int:
    """Keys per split: ``BLOCK * 2^i``, the smallest with ``B * H * ceil(L / split) <= MAX_PROGRAMS``."""
    split = BLOCK
    while B * H * -(-L // split) > MAX_PROGRAMS and split < L:
        split *= 2
    return split


def decode_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               mask: torch.Tensor) -> torch.Tensor:
    """The module formula in float32, cast to ``q.dtype``."""
    s = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5 + mask.float()[:, None, None, :]
    return (torch.softmax(s, dim=-1) @ v.float()).to(q.dtype)


def pdl_capable(device: torch.device) -> bool:
    """A CUDA (not ROCm) device of compute capability 9.0 or later: programmatic dependent launch exists."""
    return device.type == "cuda" and torch.version.hip is None and torch.cuda.get_device_capability(device)[0] >= 9


def pdl_on(device: torch.device) -> bool:
    """A :func:`pdl_capable` device, unless ``SPENSE_ATTN_PDL=0`` (never under the interpreter)."""
    if os.environ.get("SPENSE_ATTN_PDL", "1") == "0" or os.environ.get("TRITON_INTERPRET") == "1":
        return False
    return pdl_capable(device)


def launch_decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                            split: int | None = None) -> torch.Tensor:
    """Run the two kernels (CUDA tensors, or CPU under ``TRITON_INTERPRET=1``)."""
    B, H, G, D = q.shape
    L = k.shape[2]
    if D < 16 or D & (D - 1):
        raise ValueError(f"decode attention: head dim {D} must be a power of two >= 16")
    q, k, v, mask = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v, mask))
    split = split or split_length(B, H, L)
    if split % BLOCK:
        raise ValueError(f"decode attention: split {split} is not a multiple of {BLOCK}")
    ns = -(-L // split)
    gp = max(16, triton.next_power_of_2(G))
    interp = os.environ.get("TRITON_INTERPRET") == "1"
    dot_dt = tl.float32 if interp or q.dtype == torch.float32 else (
        tl.float16 if q.dtype == torch.float16 else tl.bfloat16)  # the interpreter's bf16 dots are wrong
    o = torch.empty(B * H, ns, gp, D, dtype=torch.float32, device=q.device)
    ml = torch.empty(B * H, ns, 2, gp, dtype=torch.float32, device=q.device)
    y = torch.empty(B, H, G, D, dtype=q.dtype, device=q.device)
    pdl = {"PDL": True, "launch_pdl": True} if pdl_on(q.device) else {}
    _decode_attn_split[(B * H, ns)](q, k, v, mask, o, ml, L, G, H, ns, D ** -0.5,
                                    q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1),
                                    k.stride(2), v.stride(0), v.stride(1), v.stride(2), mask.stride(0),
                                    D=D, GP=gp, BLOCK=BLOCK, SPLIT=split, DOT_DT=dot_dt, num_warps=4, **pdl)
    _decode_attn_merge[(B * H, G)](o, ml, y, G, H, ns, y.stride(0), y.stride(1), y.stride(2), D=D, GP=gp,
                                   SB=min(32, triton.next_power_of_2(ns)), num_warps=4, **pdl)
    return y


@torch.library.custom_op("spense::decode_attention", mutates_args=())
def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``y (B, H, G, D)``: see the module doc (CUDA: the kernels; CPU: the reference)."""
    if q.is_cuda and triton is not None:
        return launch_decode_attention(q, k, v, mask)
    return decode_attention_reference(q, k, v, mask)


@decode_attention.register_fake
def _(q, k, v, mask):
    torch._check(k.shape[2] == mask.shape[-1])
    return torch.empty_like(q, memory_format=torch.contiguous_format)
