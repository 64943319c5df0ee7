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


# --------------------------------------------------------------------------------------------------
# op spense::triton_decode: the launch (CUDA, or CPU under TRITON_INTERPRET=1) and the CPU reference
# --------------------------------------------------------------------------------------------------
import os  # noqa: E402

import torch  # noqa: E402


def _out_dtype(x: torch.Tensor, fp8: bool) -> torch.dtype:
    return x.dtype if (not fp8 and x.dtype in (torch.float16, torch.float32)) else torch.bfloat16


def _launch(y, x, values, meta, dense, sidx, didx, orow_s, orow_d, wscale, xscale, N, K, rows_axis):
    M = x.shape[0]
    R = values.shape[0]
    Ks = values.shape[1] * 2
    d = dense.shape[0] if rows_axis else dense.shape[1]
    interp = os.environ.get("TRITON_INTERPRET") == "1"
    BN = 16 if interp else 64
    nsb = triton.cdiv(R, BN) if R and (Ks or not rows_axis) else 0
    ndb = triton.cdiv(d, BN) if rows_axis and d else 0
    wdt = values.dtype
    if wdt == torch.float32 or interp:
        dot_dt = tl.float32  # the CPU interpreter computes bf16 dots wrongly; float32 tests the same logic
    elif wdt == torch.float16:
        dot_dt = tl.float16
    else:
        dot_dt = tl.bfloat16
    dummy = orow_s
    spense_decode_kernel[(nsb + ndb,)](
        x, x.stride(0), M,
        values, meta, dense if dense.numel() else values,
        sidx if sidx.numel() else dummy, didx if didx.numel() else dummy,
        orow_s if orow_s.numel() else dummy, orow_d if orow_d.numel() else dummy,
        y, y.stride(0),
        wscale if wscale is not None else x, xscale if xscale is not None else x,
        R, Ks, meta.shape[1] if meta.dim() == 2 else 0,
        d if rows_axis else 0, 0 if rows_axis else d, K,
        nsb,
        GATHER=(not rows_axis) and d > 0, HAS_DCOLS=(not rows_axis) and d > 0,
        HAS_WS=wscale is not None, HAS_XS=xscale is not None,
        BLOCK_N=BN, BLOCK_G=16, BLOCK_M=max(16, triton.next_power_of_2(M)), BLOCK_KD=64,
        DOT_DT=dot_dt,
    )
    return y


def decode_reference(x, values, meta, dense, sidx, didx, orow_s, orow_d, wscale, xscale, N, rows_axis):
    """What the kernel computes, in float32: ``y[:, orow] = x_region @ region.T`` for the 2:4 region
    (``decompress_24``) and the dense region, times ``wscale[n]`` and ``xscale[m]`` when given."""
    from spense.format import decompress_24

    M = x.shape[0]
    xf = x.float()
    s = decompress_24(values.float(), meta, values.shape[1] * 2)
    y = torch.zeros(M, N, dtype=torch.float32, device=x.device)
    if rows_axis:
        if s.numel():
            y[:, orow_s.long()] = xf @ s.t()
        if dense.numel():
            y[:, orow_d.long()] = xf @ dense.float().t()
    else:
        d = dense.shape[1]
        xs = xf.index_select(1, sidx.long()) if d else xf[:, : s.shape[1]]
        acc = xs @ s.t()
        if d:
            acc = acc + xf.index_select(1, didx.long()) @ dense.float().t()
        y[:, orow_s.long()] = acc
    if wscale is not None:
        y = y * wscale.float()[None, :]
    if xscale is not None:
        y = y * xscale.float().reshape(-1, 1)[:M]
    return y


@torch.library.custom_op("spense::triton_decode", mutates_args=())
def triton_decode(x: torch.Tensor, values: torch.Tensor, meta: torch.Tensor, dense: torch.Tensor,
                  sidx: torch.Tensor, didx: torch.Tensor, orow_s: torch.Tensor, orow_d: torch.Tensor,
                  wscale: torch.Tensor | None, xscale: torch.Tensor | None, N: int, K: int,
                  rows_axis: bool) -> torch.Tensor:
    """``y (M, N)`` of one Spense linear from its canonical packed tensors (M <= 64).  CUDA (or
    ``TRITON_INTERPRET=1``): the Triton kernel; CPU: :func:`decode_reference`.  ``sidx``/``didx``:
    int32 sparse/dense indices, ``orow_s``/``orow_d``: int32 output column of each sparse/dense row.
    FP8 weights (``wscale`` given) may come as uint8 bytes of e4m3 (what :func:`triton_decode_packed`
    passes, so that opcheck can compare the inputs)."""
    fp8 = wscale is not None
    if fp8 and values.dtype == torch.uint8:
        values = values.view(torch.float8_e4m3fn)
        dense = dense.view(torch.float8_e4m3fn)
    if x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1":
        x = x.contiguous()
        y = torch.empty(x.shape[0], N, dtype=_out_dtype(x, fp8), device=x.device)
        return _launch(y, x, values, meta, dense, sidx, didx, orow_s, orow_d, wscale, xscale, N, K, rows_axis)
    return decode_reference(x, values, meta, dense, sidx, didx, orow_s, orow_d, wscale, xscale, N,
                            rows_axis).to(_out_dtype(x, fp8))


@triton_decode.register_fake
def _(x, values, meta, dense, sidx, didx, orow_s, orow_d, wscale, xscale, N, K, rows_axis):
    return x.new_empty(x.shape[0], N, dtype=_out_dtype(x, wscale is not None))


def decode_tables(layout, device) -> dict[str, torch.Tensor]:
    """``sidx, didx, orow_s, orow_d`` (int32) of a :class:`~spense.format.SpenseLayout` for
    :func:`triton_decode`."""
    i32 = dict(device=device, dtype=torch.int32)
    st = {"sidx": layout.sparse_idx.to(**i32).contiguous(), "didx": layout.dense_idx.to(**i32).contiguous()}
    if layout.axis == "rows":
        st["orow_s"], st["orow_d"] = st["sidx"], st["didx"]
    else:
        st["orow_s"] = torch.arange(layout.shape[0], **i32)
        st["orow_d"] = st["orow_s"]
    return st


def triton_decode_packed(p, x2: torch.Tensor, x_scale: torch.Tensor | None = None, tables=None) -> torch.Tensor:
    """:func:`triton_decode` of a :class:`~spense.format.PackedSpense` ``p`` (tables cached by the caller)."""
    st = tables if tables is not None else decode_tables(p.layout, x2.device)
    N, K = p.layout.shape
    fp8 = p.scale is not None
    vals = p.values.view(torch.uint8) if fp8 else p.values
    dense = p.dense.view(torch.uint8) if fp8 else p.dense
    return triton_decode(x2, vals, p.meta, dense, st["sidx"], st["didx"], st["orow_s"], st["orow_d"],
                         p.scale, x_scale, N, K, p.layout.axis == "rows")
