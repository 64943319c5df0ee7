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

``spense::decode_attention_fused`` runs the same two kernels from the raw projections: the split kernel's
programs apply the q / k RMSNorm and RoPE themselves (:func:`norm_rope_reference`), and the program whose split
holds the new slot writes the new k and v into the caches (in place) and reads them back after a barrier
(``SLOT_READ``; or from registers): the engine's decode step then has no norm, RoPE or cache-write kernels of its
own (``SPENSE_ATTN_FUSED``).
The ``form`` of either op has the merge kernel store ``y`` as the o projection's operand (x_perm order, fragments,
x's f16 operand: ``FORM_*``, :mod:`spense.runtime.attn_forms`; which form a layer reads:
:mod:`spense.runtime.attn_operand`), so no kernel builds that from ``y`` (``SPENSE_ATTN_OPERAND``; Gemma's steps, which
take the plain op, too).

On sm_90+ both kernels launch with programmatic dependent launch (``SPENSE_ATTN_PDL=0``: plainly), wait
(``gdc_wait``) before their first load of what the kernel before wrote (the fused split kernel reads its first block of
the cache before: ``EARLY_KV``), then let the kernel after them launch: the split kernel may start
while the kernel that wrote q (and the cache, unfused) finishes, and the merge while the split kernel runs (the
engine's Inductor kernels are launched so too: ``Engine.pdl``).  On by default since results as of
2026-12-02 (Qwen3-8B shape, FP8, H200): the dense FP8 step 3.587 -> 3.482 ms at batch 1 and 3.934 -> 3.855
at batch 8, Spense 25 % FP8 2.929 -> 2.889 and 3.342 -> 3.226 (its other change, the one-launch split-K,
touches only the dense model).
"""

from __future__ import annotations

import os

import torch

from spense.runtime.attn_forms import FORM_F16, as_form, check_form, form_dtype, form_shape
from spense.runtime.xops import _env_int, env_flag, read_once

try:  # Triton is only needed on CUDA
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - no triton
    triton = None
    tl = None

BLOCK = 32  # keys per inner step
# the split kernel's launch: warps, and Triton's software-pipeline stages of its key loop (None: Triton's default, 3);
# module attributes read per launch, so that benchmarks/attn_bench.py can sweep them (with BLOCK and MAX_PROGRAMS).
# Triton copies the loop's key, value and mask blocks into shared memory asynchronously, STAGES - 1 blocks ahead
# (``benchmarks/attn_regs.py``: 9 ``async_copy`` ops in the TTGIR at 3 stages), once a launch marks the pointers and
# strides 16-byte aligned, as it does for the engine's tensors; 1 stage (no pipeline) took 13.51 against 11.20 µs a
# layer at B = 8 (H200, benchmarks/results/wgsd_2026-12-02 cd).  SPENSE_ATTN_STAGES (read at import; default 2 since
# the forty-fourth stop, 0: Triton's): one block ahead.  Alone (H100, wgsd_2026-12-05 bc) 2 was the fastest at B = 8
# (13.36 against 13.64 µs a layer at 3; 4 and 5, all of the loop's blocks in flight: 15.1), slower at B = 32 (44.2
# against 41.3) unless the registers are capped too (MAXNREG below; the two together in the step: bg).
SPLIT_WARPS, SPLIT_STAGES = 4, _env_int("SPENSE_ATTN_STAGES", 2, 0, 8) or None
# splits grow (x2) until B * H * S is at most this: SPENSE_ATTN_MAX_PROGRAMS (read at import; default 512: at B = 1
# on the Qwen3-8B shape, 8 KV heads and 640 keys, 20 splits of 32 keys; 128 gives 10 of 64, 64 gives 5 of 128, fewer
# partial sums for the merge to read but a longer walk per program).  Timed on the H200, Qwen3-8B shape
# (benchmarks/results/wgsd_2026-12-02, bu, cc): 128 slows both steps at B = 8; 1024 and 2048 slow dense at B = 8
# and leave Spense as it is; the attention alone (cd) is fastest at B = 8 at 512 with BLOCK 32 and 4 warps (at B = 1
# 64-key blocks are 5 % faster, 0.01 ms a step).
MAX_PROGRAMS = _env_int("SPENSE_ATTN_MAX_PROGRAMS", 512, 1)
# SPENSE_ATTN_SPLIT_BALANCE (read at import; default 1, ``0``: off): the same number of splits as the rule above, of
# equal length (rounded up to BLOCK) instead of powers of two with a short last one.  At B = 32 on the Qwen3-8B shape
# (640 keys) the rule gives each (row, KV head) a split of 512 keys and one of 128; balanced, two of 320, and the 8B
# BF16 step at B = 32 went from 6.079 to 5.597 ms (dense) and 5.853 to 5.355 (Spense 25 %) (H200,
# benchmarks/results/wgsd_2026-12-03 g).  At B = 1 and 8 and 640 keys it gives the rule's splits.
SPLIT_BALANCE = env_flag("SPENSE_ATTN_SPLIT_BALANCE", True)
# SPENSE_ATTN_EARLY_KV (read at import; default 1, ``0``: off): the fused split kernel reads its first block of keys and
# values before it waits for the kernel before it (gdc_wait), so that under dependent launch those loads overlap that
# kernel's end.  That kernel (the q / k / v projection) does not write the cache, every earlier one has completed (each
# kernel waits before it lets the next launch), and the only writer of the cache in a step is this kernel itself (the
# new slot, taken from registers for that block), so the bytes read are the same.  8B BF16 at B = 1 / 8 with
# SLOT_READ off (H200, wgsd_2026-12-03 f): dense 4.573 -> 4.547 / 5.045 -> 5.051 ms, Spense 25 % 3.459 -> 3.411 /
# 3.906 -> 3.884 (B = 8 within a run's spread).  On top of SLOT_READ (j, Spense 25 %, with / without): 3.437 / 3.457
# ms at B = 1, 3.818 / 3.793 at B = 8, each within 0.7 %: kept.  Module attribute read per launch.
EARLY_KV = env_flag("SPENSE_ATTN_EARLY_KV", True)
# SPENSE_ATTN_EARLY_PRO (read at import; default 0, ``1``: on): the fused split kernel also reads what its prologue
# needs besides q and the new k and v before the wait: the row's RoPE cos and sin, the q / k norm weights and the slot
# pos.  No kernel of the step writes the weights; the RoPE rows and pos are written before the step's first layer, so
# by the argument of EARLY_KV (every kernel but the one just before has completed) they are in place, as long as the
# kernel that writes them is not the one just before layer 0's attention (today the q / k / v projection sits between;
# Inductor's kernel order does not promise it, one more reason this stays off).  After the wait
# the prologue then has only q, k and v to read.  Timed (H200, 8B BF16, Spense 25 %; benchmarks/results/wgsd_2026-12-03
# j): 3.437 -> 3.436 ms at B = 1, 3.818 -> 3.825 at B = 8, no gain, so off.  Module attribute read per launch.
EARLY_PRO = env_flag("SPENSE_ATTN_EARLY_PRO", False)
# SPENSE_ATTN_SLOT_READ (read at import; default 1): the fused split kernel's loop reads the new slot back from the
# cache, after a barrier behind the program's own stores to it, instead of putting the new key and value in place of
# the loaded ones (``tl.where`` on every block's tiles), so that its loop is the plain kernel's (the same values, so
# the same bits).  Alone (attn_bench, H200, Qwen3-8B shape, 640 keys; benchmarks/results/wgsd_2026-12-03 f) the fused
# kernel with the where took 7.42 / 14.91 / 61.1 µs a layer at B = 1 / 8 / 32 against 5.57 / 11.00 / 35.9 unfused.
# Module attribute read per launch.
SLOT_READ = env_flag("SPENSE_ATTN_SLOT_READ", True)
# SPENSE_ATTN_MAXNREG (read at import; default 128 since the forty-fourth stop, 0: the compiler's choice): registers a
# thread of the split kernel may take (Triton's ``maxnreg``).  Compiled by Triton 3.6 and its ptxas for sm_90a,
# specialized as a launch on the engine's tensors is (``benchmarks/attn_regs.py``), the fused kernel at 128 keys a split
# (8B, B = 8) takes 151 registers uncapped: 3 programs of 4 warps a SM, so B = 8's 320 programs run in one wave on 132
# SMs and B = 32's 512 in 1.29; capped at 128, no spill and 4 a SM (0.97 waves at B = 32).  8B FP8 step on an H100
# (wgsd_2026-12-05 be, bg), default -> cap 128 and 2 stages: dense 3.866 -> 3.842 / 4.232 -> 4.198 / 5.737 -> 5.516 ms
# at B = 1 / 8 / 32, Spense 25 % 3.016 -> 2.995 / 3.485 -> 3.432 / 5.283 -> 5.127; BF16 (bh) within 0.4 %, none slower.
# Module attribute read per launch.
SPLIT_MAXNREG = _env_int("SPENSE_ATTN_MAXNREG", 128, 0, 255)
# The ops take any strides (the launcher copies a tensor whose last dim is not contiguous, and the caches it
# writes must have one: it raises otherwise), so Inductor may hand them its buffers as they are: under its
# default for custom ops (exact strides) it copied the step's RoPE rows and mask into new buffers for every
# layer's call, one more kernel per one or two layers.  SPENSE_ATTN_FLEXIBLE=0 (read at import) keeps the
# default, for an A/B; it also turns Inductor's compile cache off in the process, whose key leaves the ops'
# tags out (a run under one setting would reuse code compiled under the other).
FLEXIBLE = (torch.Tag.flexible_layout,) if _env_int("SPENSE_ATTN_FLEXIBLE", 1, 0, 1) else ()
if not FLEXIBLE:
    import torch._inductor.config

    torch._inductor.config.fx_graph_cache = False


def _custom_op(name: str, mutates_args: tuple):
    """``torch.library.custom_op`` with :data:`FLEXIBLE`'s tags where this torch takes them (from 2.7)."""
    if FLEXIBLE:
        try:
            return torch.library.custom_op(name, mutates_args=mutates_args, tags=FLEXIBLE)
        except TypeError:
            pass
    return torch.library.custom_op(name, mutates_args=mutates_args)


if triton is not None:

    @triton.jit
    def _norm_rope(x, xr, w, wr, cs, sn, rd, eps, D: tl.constexpr, NORM: tl.constexpr, DT: tl.constexpr):
        """Rows ``x`` [R, D] (float32) and ``xr``, the same rows with their halves swapped: ``RMSNorm`` (if
        NORM, with weight ``w`` [1, D] and ``wr``, its halves swapped, in float32; rounded to DT before and after
        the weight) then ``x cos + rotate_half(x) sin``, rounded to DT."""
        if NORM:
            r = tl.math.rsqrt(tl.sum(x * x, 1) / D + eps)[:, None]
            x = ((x * r).to(DT).to(tl.float32) * w).to(DT).to(tl.float32)
            xr = ((xr * r).to(DT).to(tl.float32) * wr).to(DT).to(tl.float32)
        sign = tl.where(rd < D // 2, -1.0, 1.0)[None, :]  # rotate_half(x) = cat(-x[D/2:], x[:D/2])
        return (x * cs + sign * xr * sn).to(DT)

    @triton.jit
    def _prologue_inputs(cos_ptr, sin_ptr, qw_ptr, kw_ptr, pos_ptr, b, scb, ssb, rd, rdr, NORM: tl.constexpr):
        """What the fused prologue reads besides q and the new k, v: the row's RoPE ``cos`` and ``sin`` [1, D], the
        q and k norm weights [1, D] in float32 and each with its halves swapped (``cos`` in their place without
        NORM: unused), and the slot ``pos``."""
        cs = tl.load(cos_ptr + b * scb + rd)[None, :]
        sn = tl.load(sin_ptr + b * ssb + rd)[None, :]
        if NORM:
            wq = tl.load(qw_ptr + rd)[None, :].to(tl.float32)
            wqr = tl.load(qw_ptr + rdr)[None, :].to(tl.float32)
            wk = tl.load(kw_ptr + rd)[None, :].to(tl.float32)
            wkr = tl.load(kw_ptr + rdr)[None, :].to(tl.float32)
        else:
            wq, wqr, wk, wkr = cs, cs, cs, cs
        return cs, sn, wq, wqr, wk, wkr, tl.load(pos_ptr)

    @triton.jit
    def _kv_block(row_ptr, rj, sl, rd, L):
        """Rows ``rj`` of a cache slice (``row_ptr`` at its key 0, ``sl`` apart, ``rd`` the head dim), 0 past ``L``."""
        return tl.load(row_ptr + rj[:, None] * sl + rd[None, :], mask=rj[:, None] < L, other=0.0)

    @triton.jit
    def _attn_scores(q, k, mrow_ptr, rj, L, scale, m_i, l_i, DOT_DT: tl.constexpr):
        """One block of keys ``rj`` (``k`` [BLOCK, D] loaded) against rows ``q``: ``p = e^(s - m')``, the running
        max ``m' = max(m, max_j s)``, ``alpha = e^(m - m')`` and the running sum ``l' = l alpha + sum_j p``."""
        sc = tl.dot(q, tl.trans(k.to(DOT_DT))) * scale
        sc = sc + tl.load(mrow_ptr + rj, mask=rj < L, other=float("-inf"))[None, :]
        m_new = tl.maximum(m_i, tl.max(sc, 1))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # a split with no key yet: no NaN
        p = tl.exp(sc - m_use[:, None])
        alpha = tl.exp(m_i - m_use)
        return p, alpha, m_new, l_i * alpha + tl.sum(p, 1)

    @triton.jit
    def _decode_attn_split(q_ptr, k_ptr, v_ptr, m_ptr, o_ptr, ml_ptr, L, G, H, NS, scale,
                           sqb, sqh, sqg, skb, skh, skl, svb, svh, svl, smb,
                           kn_ptr, vn_ptr, qw_ptr, kw_ptr, cos_ptr, sin_ptr, pos_ptr, eps, snb, snh, svnb, svnh,
                           scb, ssb,
                           D: tl.constexpr, GP: tl.constexpr, BLOCK: tl.constexpr, SPLIT: tl.constexpr,
                           DOT_DT: tl.constexpr, FUSED: tl.constexpr = False, NORM: tl.constexpr = False,
                           PDL: tl.constexpr = False, EARLY: tl.constexpr = 0, SLOT_READ: tl.constexpr = False,
                           PRO: tl.constexpr = False):
        bh = tl.program_id(0)
        s = tl.program_id(1)
        b = (bh // H).to(tl.int64)  # 64-bit offsets: a large cache passes 2^31 elements
        h = (bh % H).to(tl.int64)
        rg = tl.arange(0, GP)
        rd = tl.arange(0, D)
        rdr = (rd + D // 2) % D  # the head dim with its halves swapped (RoPE's rotate_half)
        lo = s * SPLIT
        if EARLY:  # fused: no kernel before writes the cache (the slot pos comes from registers), so the first
            # block of keys and values is read before the wait (EARLY_KV)
            tl.static_assert(FUSED, "EARLY_KV is for the fused kernel (no kernel before it writes its cache)")
            rj0 = lo + tl.arange(0, BLOCK)
            k0 = _kv_block(k_ptr + b * skb + h * skh, rj0, skl, rd, L)
            v0 = _kv_block(v_ptr + b * svb + h * svh, rj0, svl, rd, L)
        if PRO:  # fused: RoPE rows, norm weights and slot before the wait too (EARLY_PRO; no kernel before writes them)
            tl.static_assert(FUSED, "EARLY_PRO is for the fused kernel")
            cs, sn, wq, wqr, wk, wkr, pos = _prologue_inputs(cos_ptr, sin_ptr, qw_ptr, kw_ptr, pos_ptr, b, scb, ssb,
                                                             rd, rdr, NORM)
        if PDL:  # q (and, unfused, the cache) written by the kernel before: wait for it, then free the next one
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        qo = q_ptr + b * sqb + h * sqh + rg[:, None] * sqg
        q = tl.load(qo + rd[None, :], mask=rg[:, None] < G, other=0.0)
        if FUSED:  # q, k raw: norms and RoPE here; the new k, v into the cache slot pos (one program writes)
            DT: tl.constexpr = q_ptr.dtype.element_ty
            if not PRO:
                cs, sn, wq, wqr, wk, wkr, pos = _prologue_inputs(cos_ptr, sin_ptr, qw_ptr, kw_ptr, pos_ptr, b, scb,
                                                                 ssb, rd, rdr, NORM)
            qr = tl.load(qo + rdr[None, :], mask=rg[:, None] < G, other=0.0)
            q = _norm_rope(q.to(tl.float32), qr.to(tl.float32), wq, wqr, cs, sn, rd, eps, D, NORM, DT)
            ko = kn_ptr + b * snb + h * snh
            kn = _norm_rope(tl.load(ko + rd)[None, :].to(tl.float32), tl.load(ko + rdr)[None, :].to(tl.float32),
                            wk, wkr, cs, sn, rd, eps, D, NORM, DT).to(k_ptr.dtype.element_ty)
            vn = tl.load(vn_ptr + b * svnb + h * svnh + rd)[None, :].to(v_ptr.dtype.element_ty)
            mine = rd[None, :] < tl.where((pos >= lo) & (pos < lo + SPLIT), D, 0)  # this split holds slot pos
            tl.store(k_ptr + b * skb + h * skh + pos * skl + rd[None, :], kn, mask=mine)
            tl.store(v_ptr + b * svb + h * svh + pos * svl + rd[None, :], vn, mask=mine)
            if SLOT_READ:  # the loop reads the slot back from the cache: the program's stores made visible to it
                tl.debug_barrier()
        q = q.to(DOT_DT)
        m_i = tl.full([GP], float("-inf"), tl.float32)
        l_i = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, D], tl.float32)
        kb = k_ptr + b * skb + h * skh
        vb = v_ptr + b * svb + h * svh
        if EARLY:  # the first block from the registers loaded before the wait, the same math as the loop's
            k0 = tl.where(rj0[:, None] == pos, kn, k0)
            p, alpha, m_i, l_i = _attn_scores(q, k0, m_ptr + b * smb, rj0, L, scale, m_i, l_i, DOT_DT)
            v0 = tl.where(rj0[:, None] == pos, vn, v0)
            acc = acc * alpha[:, None] + tl.dot(p.to(DOT_DT), v0.to(DOT_DT))
        for j0 in range(BLOCK * EARLY, SPLIT, BLOCK):  # Triton copies the blocks ahead (SPLIT_STAGES)
            rj = lo + j0 + tl.arange(0, BLOCK)
            k = _kv_block(kb, rj, skl, rd, L)
            if FUSED and not SLOT_READ:  # the slot being written: its new key from registers (the store not awaited)
                k = tl.where(rj[:, None] == pos, kn, k)
            p, alpha, m_i, l_i = _attn_scores(q, k, m_ptr + b * smb, rj, L, scale, m_i, l_i, DOT_DT)
            v = _kv_block(vb, rj, svl, rd, L)
            if FUSED and not SLOT_READ:
                v = tl.where(rj[:, None] == pos, vn, v)
            acc = acc * alpha[:, None] + tl.dot(p.to(DOT_DT), v.to(DOT_DT))
        base = bh * NS + s
        # the G real query rows only (the merge reads no other): GP pads them to 16 for tl.dot, and storing the pad
        # would write 4x the partial sums at Qwen3's G = 4
        tl.store(o_ptr + (base * GP + rg[:, None]) * D + rd[None, :], acc, mask=rg[:, None] < G)
        tl.store(ml_ptr + (base * 2) * GP + rg, m_i, mask=rg < G)
        tl.store(ml_ptr + (base * 2 + 1) * GP + rg, l_i, mask=rg < G)

    @triton.jit
    def _decode_attn_merge(o_ptr, ml_ptr, y_ptr, G, H, NS, syb, syh, syg,
                           D: tl.constexpr, GP: tl.constexpr, SB: tl.constexpr, PDL: tl.constexpr = False,
                           FORM: tl.constexpr = 0, F16: tl.constexpr = False):
        # program (b*H+h, g): query row g, its NS splits merged SB at a time (a [SB, D] tile per load,
        # a running max across the chunks), so no program walks the splits one load after another; FORM / F16:
        # y written as the next linear's operand (attn_operand.operand_form)
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
        if F16:  # x's f16 operand: the bf16 output times 2^-8, rounded to f16 (xops.f16_operand)
            out = out.to(tl.bfloat16).to(tl.float32) * 0.00390625  # 2^-8, xops.F16_X_SCALE
        if FORM == 0:
            tl.store(y_ptr + b * syb + h * syh + g * syg + rd, out.to(y_ptr.dtype.element_ty))
        else:  # column k of token b's row of K = H G D values, in 32-column chunks: k = 32 c + 8 i + 2 t + e
            k = (h * G + g) * D + rd
            c, i, t, e = k // 32, (k % 32) // 8, (k % 8) // 2, k % 2
            if FORM == 1:  # x_perm: [b, 32 c + 8 t + 2 i + e]
                dst = b * H * G * D + c * 32 + t * 8 + i * 2 + e
            else:  # x_fragments at NT = 1 (b < 8): [c, 0, 4 b + t, i, e]
                dst = c * 256 + b * 32 + t * 8 + i * 2 + e
            tl.store(y_ptr + dst, out.to(y_ptr.dtype.element_ty))


def split_length(B: int, H: int, L: int) -> int:
    """Keys per split: ``BLOCK * 2^i``, the smallest with ``B * H * ceil(L / split) <= MAX_PROGRAMS``; under
    :data:`SPLIT_BALANCE`, with ``S = ceil(L / that)``, ``BLOCK * ceil(L / (S * BLOCK))`` keys instead: the fewest whole
    blocks a split with which ``S`` splits still cover the ``L`` keys (so at most ``S`` programs per row and head)."""
    split = BLOCK
    while B * H * -(-L // split) > MAX_PROGRAMS and split < L:
        split *= 2
    if SPLIT_BALANCE:
        ns = -(-L // split)
        split = BLOCK * -(-L // (ns * BLOCK))
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
                            split: int | None = None, fused: tuple | None = None, form: int = 0) -> torch.Tensor:
    """Run the two kernels (CUDA tensors, or CPU under ``TRITON_INTERPRET=1``).  ``fused``: ``(k_new, v_new,
    q_w, k_w, cos, sin, pos, eps)`` of :func:`decode_attention_fused` (q and k_new raw; k, v slices of the
    caches, written in place at slot ``pos``); ``form``: :func:`~spense.runtime.attn_operand.operand_form`'s."""
    B, H, G, D = q.shape
    check_form(form, B, H * G * D, q.dtype)
    L = k.shape[2]
    if D < 16 or D & (D - 1):
        raise ValueError(f"decode attention: head dim {D} must be a power of two >= 16")
    if fused is not None and (k.stride(-1) != 1 or v.stride(-1) != 1):
        raise ValueError("decode attention: the caches written in place need a contiguous last dim")
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
    y = torch.empty(form_shape(form, (B, H, G, D)), dtype=form_dtype(form, q.dtype), device=q.device)
    pdl = {"PDL": True, "launch_pdl": True} if pdl_on(q.device) else {}
    cap = SPLIT_MAXNREG and not interp and torch.version.hip is None  # Triton's maxnreg: NVIDIA only
    fz = {}  # the split kernel's prologue switches
    if fused is None:
        pro = (q,) * 7 + (0.0, 0, 0, 0, 0, 0, 0)  # unused pointers and strides
    else:
        kn, vn, qw, kw, cos, sin, pos, eps = fused
        kn, vn, cos, sin = (t if t.stride(-1) == 1 else t.contiguous() for t in (kn, vn, cos, sin))
        qw, kw = (w if w is None or w.stride(-1) == 1 else w.contiguous() for w in (qw, kw))
        pro = (kn, vn, q if qw is None else qw, q if kw is None else kw, cos, sin, pos, float(eps),
               kn.stride(0), kn.stride(1), vn.stride(0), vn.stride(1), cos.stride(0), sin.stride(0))
        fz = {"FUSED": True, "NORM": qw is not None, "EARLY": int(EARLY_KV), "SLOT_READ": SLOT_READ, "PRO": EARLY_PRO}
    _decode_attn_split[(B * H, ns)](q, k, v, mask, o, ml, L, G, H, ns, D ** -0.5,
                                    q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1),
                                    k.stride(2), v.stride(0), v.stride(1), v.stride(2), mask.stride(0), *pro,
                                    D=D, GP=gp, BLOCK=BLOCK, SPLIT=split, DOT_DT=dot_dt, num_warps=SPLIT_WARPS,
                                    **({} if SPLIT_STAGES is None else {"num_stages": SPLIT_STAGES}),
                                    **({"maxnreg": SPLIT_MAXNREG} if cap else {}), **pdl, **fz)
    _decode_attn_merge[(B * H, G)](o, ml, y, G, H, ns, y.stride(0), y.stride(1), y.stride(2), D=D, GP=gp,
                                   SB=min(32, triton.next_power_of_2(ns)), num_warps=4, FORM=form & 3,
                                   F16=bool(form & FORM_F16), **pdl)
    return y


@_custom_op("spense::decode_attention", mutates_args=())
def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                     form: int = 0) -> torch.Tensor:
    """``y (B, H, G, D)``: see the module doc (CUDA: the kernels; CPU: the reference).  ``form`` (default 0: ``y``
    as is): ``y`` as the next linear's operand (:func:`~spense.runtime.attn_operand.operand_form`), as
    :func:`decode_attention_fused` writes it."""
    if q.is_cuda and triton is not None:
        return launch_decode_attention(q, k, v, mask, form=form)
    check_form(form, q.shape[0], q.shape[1] * q.shape[2] * q.shape[3], q.dtype)
    return as_form(decode_attention_reference(q, k, v, mask), form)


@decode_attention.register_fake
def _(q, k, v, mask, form=0):
    torch._check(k.shape[2] == mask.shape[-1])
    return _form_like(q, form)


@read_once
def fused_on() -> bool:
    """Whether the engine's decode steps take :func:`decode_attention_fused` (``SPENSE_ATTN_FUSED``, read once;
    default 1, ``0``: q/k norms, RoPE and the cache writes as the module's own ops, fused by torch.compile)."""
    return env_flag("SPENSE_ATTN_FUSED", True)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``cat(-x[..., D/2:], x[..., :D/2])``: RoPE on halves (the engine's module and :func:`norm_rope_reference`)."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def norm_rope_reference(x: torch.Tensor, w: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor,
                        eps: float) -> torch.Tensor:
    """``r = RMSNorm(x)`` (``w * (x / sqrt(mean(x^2) + eps))`` in float32, rounded to x's dtype before ``w``;
    none if ``w`` is None), then ``r cos + rotate_half(r) sin`` rounded to x's dtype, ``rotate_half(r) =
    cat(-r[D/2:], r[:D/2])``: the module's q / k path (:mod:`spense.engine.model`).  The kernel takes ``w`` in
    x's dtype (as the engine holds it), so that ``w * r`` rounds to it too."""
    if w is not None:
        h = x.float()
        x = w * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return (x * cos + rotate_half(x) * sin).to(x.dtype)


@_custom_op("spense::decode_attention_fused", mutates_args=("k_cache", "v_cache"))
def decode_attention_fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_w: torch.Tensor | None,
                           k_w: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
                           v_cache: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor, eps: float,
                           form: int = 0) -> torch.Tensor:
    """One decode step's attention from the raw projections: with ``q`` ``(B, H, G, D)``, ``k, v`` ``(B, H, D)``
    (before norms and RoPE), ``cos, sin`` ``(B, D)`` float32, caches ``(B_c >= B, H, S, D)``, ``pos`` ``(1,)``
    the new token's slot (``0 <= pos < L``: the kernel writes it from the split that holds it) and ``mask`` ``(B, L)``:

    ``q' = norm_rope(q, q_w)``; ``k_cache[b, h, pos] = norm_rope(k, k_w)``; ``v_cache[b, h, pos] = v``;
    ``y = decode_attention(q', k_cache[:B, :, :L], v_cache[:B, :, :L], mask)``

    (:func:`norm_rope_reference`).  CUDA: the split kernel does the prologue itself (one launch instead of the
    norms', RoPE's and the two cache writes' kernels); CPU: the formulas.  ``form`` (default 0: ``y`` as is):
    ``y`` as the next linear's operand (:func:`~spense.runtime.attn_operand.operand_form`)."""
    B, L = q.shape[0], mask.shape[-1]
    if q.is_cuda and triton is not None:
        return launch_decode_attention(q, k_cache[:B, :, :L], v_cache[:B, :, :L], mask,
                                       fused=(k, v, q_w, k_w, cos, sin, pos, eps), form=form)
    check_form(form, B, q.shape[1] * q.shape[2] * q.shape[3], q.dtype)
    qr = norm_rope_reference(q, q_w, cos[:, None, None], sin[:, None, None], eps)
    k_cache[:B].index_copy_(2, pos, norm_rope_reference(k, k_w, cos[:, None], sin[:, None], eps)[:, :, None]
                            .to(k_cache.dtype))
    v_cache[:B].index_copy_(2, pos, v[:, :, None].to(v_cache.dtype))
    return as_form(decode_attention_reference(qr, k_cache[:B, :, :L], v_cache[:B, :, :L], mask), form)


@decode_attention_fused.register_fake
def _(q, k, v, q_w, k_w, cos, sin, k_cache, v_cache, pos, mask, eps, form=0):
    torch._check(mask.shape[-1] <= k_cache.shape[2])
    torch._check(q.shape[0] <= k_cache.shape[0])
    return _form_like(q, form)


def _form_like(q: torch.Tensor, form: int) -> torch.Tensor:
    """The fake output of either op: ``y`` of ``q``'s shape in ``form`` (0: contiguous, as ``q``)."""
    if form == 0:
        return torch.empty_like(q, memory_format=torch.contiguous_format)
    return q.new_empty(form_shape(form, tuple(q.shape)), dtype=form_dtype(form, q.dtype))


# -- the attention's output as the next linear's operand (SPENSE_ATTN_OPERAND; the forms: attn_forms) ----------
@read_once
def operand_on() -> bool:
    """Whether the engine's decode steps have :func:`decode_attention_fused` (or :func:`decode_attention`, where a
    model's steps take the plain op) write its output as the o projection's operand where that layer reads one
    (``SPENSE_ATTN_OPERAND``, read once; default 1, ``0``: off): the kernel that builds the operand from ``y`` (one per
    layer) is then gone.  8B, one H200 lease (wgsd_2026-12-02 bt, bu, bx):
    Spense BF16 at B = 8 3.996 → 3.906 ms, Spense FP8 at B = 1 2.818 → 2.769 ms, the rest within 0.6 %."""
    return env_flag("SPENSE_ATTN_OPERAND", True)
