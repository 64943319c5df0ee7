"""Triton fused decode kernel for the Spense format (one launch, M <= 64).

Reads the *canonical* packed layout directly (``values`` ``(R, Ks/2)``, ``meta`` uint8 nibbles,
dense region), expands every 2:4 group in registers (two compares + selects per position) into a
``(BLOCK_N, 4*BLOCK_G)`` tile, multiplies with the (gathered, for ``axis="cols"``) activation tile
``(BLOCK_K, BLOCK_M)`` through ``tl.dot`` and, in the same program, adds the dense region
(``cols``) or handles dense row blocks (``rows``: programs past the sparse row blocks).  Outputs are
written in place at ``y[m, out_row[r]]``.  FP8 (float8_e4m3fn) weights are converted in registers
and scaled per output channel (and per token when ``x_scale`` is given).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def spense_decode_kernel(
    x_ptr, stride_xm, M,
    vals_ptr, meta_ptr, dense_ptr,
    sidx_ptr, didx_ptr, orow_s_ptr, orow_d_ptr,
    y_ptr, stride_ym,
    wscale_ptr, xscale_ptr,
    R, Ks, Gb, D_ROWS, D_COLS, K,
    NSB,
    GATHER: tl.constexpr, HAS_DCOLS: tl.constexpr,
    HAS_WS: tl.constexpr, HAS_XS: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_KD: tl.constexpr,
    DOT_DT: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_m = tl.arange(0, BLOCK_M)
    m_mask = offs_m < M
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    if pid < NSB:
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        r_mask = rows < R
        half = Ks // 2
        G = Ks // 4
        for g0 in range(0, G, BLOCK_G):
            gg = g0 + tl.arange(0, BLOCK_G)
            g_mask = gg < G
            mk = r_mask[:, None] & g_mask[None, :]
            vp = vals_ptr + rows[:, None] * half + 2 * gg[None, :]
            v0 = tl.load(vp, mask=mk, other=0.0).to(DOT_DT)
            v1 = tl.load(vp + 1, mask=mk, other=0.0).to(DOT_DT)
            mb = tl.load(meta_ptr + rows[:, None] * Gb + (gg[None, :] // 2), mask=mk, other=0x44)
            nib = (mb.to(tl.int32) >> ((gg[None, :] % 2) * 4)) & 0xF
            i0 = nib & 3
            i1 = nib >> 2
            z = tl.zeros_like(v0)
            w0 = tl.where(i0 == 0, v0, z)
            w1 = tl.where(i0 == 1, v0, tl.where(i1 == 1, v1, z))
            w2 = tl.where(i0 == 2, v0, tl.where(i1 == 2, v1, z))
            w3 = tl.where(i1 == 3, v1, z)
            w = tl.join(tl.join(w0, w2), tl.join(w1, w3))  # [n, g, a, b] = w_{2a+b}
            w = tl.reshape(w, (BLOCK_N, BLOCK_G * 4))
            kk = g0 * 4 + tl.arange(0, BLOCK_G * 4)
            k_mask = kk < Ks
            if GATHER:
                xcol = tl.load(sidx_ptr + kk, mask=k_mask, other=0)
            else:
                xcol = kk
            xt = tl.load(x_ptr + offs_m[None, :] * stride_xm + xcol[:, None],
                         mask=k_mask[:, None] & m_mask[None, :], other=0.0).to(DOT_DT)
            acc += tl.dot(w, xt)
        if HAS_DCOLS:
            for k0 in range(0, D_COLS, BLOCK_KD):
                kk = k0 + tl.arange(0, BLOCK_KD)
                k_mask = kk < D_COLS
                wd = tl.load(dense_ptr + rows[:, None] * D_COLS + kk[None, :],
                             mask=r_mask[:, None] & k_mask[None, :], other=0.0).to(DOT_DT)
                xcol = tl.load(didx_ptr + kk, mask=k_mask, other=0)
                xt = tl.load(x_ptr + offs_m[None, :] * stride_xm + xcol[:, None],
                             mask=k_mask[:, None] & m_mask[None, :], other=0.0).to(DOT_DT)
                acc += tl.dot(wd, xt)
        orow = tl.load(orow_s_ptr + rows, mask=r_mask, other=0)
    else:
        rows = (pid - NSB) * BLOCK_N + tl.arange(0, BLOCK_N)
        r_mask = rows < D_ROWS
        for k0 in range(0, K, BLOCK_KD):
            kk = k0 + tl.arange(0, BLOCK_KD)
            k_mask = kk < K
            wd = tl.load(dense_ptr + rows[:, None] * K + kk[None, :],
                         mask=r_mask[:, None] & k_mask[None, :], other=0.0).to(DOT_DT)
            xt = tl.load(x_ptr + offs_m[None, :] * stride_xm + kk[:, None],
                         mask=k_mask[:, None] & m_mask[None, :], other=0.0).to(DOT_DT)
            acc += tl.dot(wd, xt)
        orow = tl.load(orow_d_ptr + rows, mask=r_mask, other=0)
    if HAS_WS:
        acc = acc * tl.load(wscale_ptr + orow, mask=r_mask, other=0.0)[:, None]
    if HAS_XS:
        acc = acc * tl.load(xscale_ptr + offs_m, mask=m_mask, other=0.0)[None, :]
    yp = y_ptr + offs_m[None, :] * stride_ym + orow[:, None]
    tl.store(yp, acc.to(y_ptr.dtype.element_ty), mask=r_mask[:, None] & m_mask[None, :])
