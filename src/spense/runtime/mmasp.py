"""CUDA ``mma.sp`` decode backend: build (torch cpp extension) and the kernel weight layout.

``to_kernel_layout`` re-arranges a canonical :class:`~spense.format.PackedSpense` once, at load
time, into the order the kernel's warps read (see ``csrc/spense_mmasp.cu`` and docs/runtime.md):

* sparse values: ``[row tile (16 rows)][k step (64 K)][mma j (2)][lane (32)]`` x 16 bytes, each
  16 bytes being exactly one thread's A fragment of one ``mma.sp.m16n8k32``;
* metadata: ``[row tile][k step][lane]`` x uint32, the word each lane passes to ``mma.sp``
  (sparsity selector ``j``: lanes with ``t = lane % 4 in {2j, 2j+1}`` supply it);
* dense region: ``[row tile][k step][mma j (4)][lane]`` x 16 bytes (``mma.m16n8k16`` A fragments).
Rows are padded to a multiple of 32 and K steps with zeros (padding nibble 0x4).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from spense.errors import DeviceError
from spense.format import PackedSpense, _decode_meta

_EXT = None
_LOCK = threading.Lock()
ROW_PAD = 32  # rows padded to a multiple of this (row blocks of 16 or 32 rows)
META_LAYOUT = os.environ.get("SPENSE_MMASP_META", "L2")  # L2 verified on H100 (L1 gives wrong results)


def load_extension(verbose: bool = False):
    """Build (once, cached by torch in ~/.cache/torch_extensions) and return the extension module."""
    global _EXT
    with _LOCK:
        if _EXT is not None:
            return _EXT
        if not torch.cuda.is_available():
            raise DeviceError("the mmasp backend needs a CUDA GPU")
        major, _ = torch.cuda.get_device_capability()
        if major < 8:
            raise DeviceError("the mmasp backend needs sm80+ (sparse tensor cores)")
        from torch.utils.cpp_extension import load

        src = Path(__file__).parent / "csrc" / "spense_mmasp.cu"
        arch = f"{major}{torch.cuda.get_device_capability()[1]}"
        _EXT = load(
            name="spense_mmasp_ext",
            sources=[str(src)],
            extra_cuda_cflags=["-O3", f"-gencode=arch=compute_{arch},code=sm_{arch}", "-lineinfo",
                               "--use_fast_math", "-Xptxas=-v" if verbose else "-Xptxas=-O3"],
            verbose=verbose,
        )
        return _EXT


def _frag(a: torch.Tensor, jn: int) -> torch.Tensor:
    """(Rp, S*jn*16) 16-bit matrix -> [row tile][step][j][lane][8] fragment order (m16n8k16 A)."""
    Rp, C = a.shape
    S = C // (jn * 16)
    v = a.reshape(Rp // 16, 2, 8, S, jn, 2, 4, 2)  # T, h, g, s, j, q, t, e
    return v.permute(0, 3, 4, 2, 6, 5, 1, 7).contiguous().reshape(-1)


@dataclass
class KernelWeights:
    sv: torch.Tensor
    sm: torch.Tensor
    dv: torch.Tensor
    sidx: torch.Tensor
    didx: torch.Tensor
    out_row: torch.Tensor
    kx: int
    rows_sparse: int  # padded
    rows_dense: int  # padded (axis rows)
    Ss: int
    SdA: int
    SdB: int
    gather: bool
    xperm: torch.Tensor | None = None  # cols axis with a dense region: x columns [sparse | dense]
    kx_d: int = 0
    xoff_d: int = 0


def _pad_to(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def to_kernel_layout(p: PackedSpense, device, meta_layout: str | None = None) -> KernelWeights:
    meta_layout = meta_layout or META_LAYOUT
    lay = p.layout
    N, K = lay.shape
    R, Ks = p.sparse_shape
    d = lay.n_dense
    dt = torch.bfloat16
    vals = p.values.to(device)
    if vals.dtype != dt:
        vals = vals.to(dt)
    Rp = _pad_to(max(R, 1), ROW_PAD) if R else 0
    Ksp = _pad_to(Ks, 64)
    Ss = Ksp // 64 if R and Ks else 0
    # ---- sparse values ----
    if Ss:
        vpad = torch.zeros(Rp, Ksp // 2, dtype=dt, device=device)
        vpad[:R, : Ks // 2] = vals
        sv = _frag(vpad, 2)
        # ---- metadata words ----
        G = Ks // 4
        i0, i1 = _decode_meta(p.meta.to(device), G)
        nib = torch.full((Rp, Ksp // 4), 0x4, dtype=torch.int64, device=device)
        nib[:R, :G] = i0 | (i1 << 2)
        nib = nib.reshape(Rp, Ss, 2, 8)  # row, step, j, group-in-mma
        shifts = (torch.arange(8, device=device) * 4)
        word = (nib << shifts).sum(-1)  # (Rp, Ss, 2) int64, the 32-bit row word of mma j
        T = Rp // 16
        word = word.reshape(T, 2, 8, Ss, 2)  # T, h(row g / g+8), g, s, j
        if meta_layout == "L1":
            # lane (g, t): j = t >> 1, row g + 8 * (t & 1), full 32-bit word
            m = word.permute(0, 3, 2, 4, 1)  # T, s, g, j, h  -> t = 2j + h
            m = m.reshape(T, Ss, 8, 4)
        else:
            # L2: lane (g, t): j = t >> 1, half = t & 1; low 16 bits = row g, high = row g + 8
            lo = word[:, 0]  # T, g, s, j
            hi = word[:, 1]
            parts = []
            for half in range(2):
                a = (lo >> (16 * half)) & 0xFFFF
                b = (hi >> (16 * half)) & 0xFFFF
                parts.append(a | (b << 16))
            m = torch.stack(parts, -1)  # T, g, s, j, half
            m = m.permute(0, 2, 1, 3, 4).reshape(T, Ss, 8, 4)
        sm = (m.reshape(-1) & 0xFFFFFFFF)
        sm = torch.where(sm >= 2**31, sm - 2**32, sm).to(torch.int32).contiguous()
    else:
        sv = torch.zeros(8, dtype=dt, device=device)
        sm = torch.zeros(1, dtype=torch.int32, device=device)
    # ---- dense region ----
    dense = p.dense.to(device)
    if dense.dtype != dt:
        dense = dense.to(dt)
    SdA = SdB = 0
    Rdp = 0
    if lay.axis == "cols":
        dp = _pad_to(d, 64)
        SdA = dp // 64
        if SdA:
            dpad = torch.zeros(Rp, dp, dtype=dt, device=device)
            dpad[:N, :d] = dense
            dv = _frag(dpad, 4)
        else:
            dv = torch.zeros(8, dtype=dt, device=device)
        sidx = torch.zeros(max(Ksp, 2), dtype=torch.int32, device=device)
        sidx[:Ks] = lay.sparse_idx.to(device=device, dtype=torch.int32)
        didx = torch.zeros(max(dp, 2), dtype=torch.int32, device=device)
        didx[:d] = lay.dense_idx.to(device=device, dtype=torch.int32)
        out_row = torch.full((Rp,), -1, dtype=torch.int32, device=device)
        out_row[:N] = torch.arange(N, dtype=torch.int32, device=device)
        gather = d > 0
    else:
        Kp = _pad_to(K, 64)
        Rdp = _pad_to(d, ROW_PAD) if d else 0
        SdB = Kp // 64 if d else 0
        if d:
            dpad = torch.zeros(Rdp, Kp, dtype=dt, device=device)
            dpad[:d, :K] = dense
            dv = _frag(dpad, 4)
        else:
            dv = torch.zeros(8, dtype=dt, device=device)
        sidx = torch.zeros(2, dtype=torch.int32, device=device)
        didx = torch.zeros(2, dtype=torch.int32, device=device)
        out_row = torch.full((Rp + Rdp,), -1, dtype=torch.int32, device=device)
        out_row[:R] = lay.sparse_idx.to(device=device, dtype=torch.int32)
        if d:
            out_row[Rp : Rp + d] = lay.dense_idx.to(device=device, dtype=torch.int32)
        gather = False
    kw = KernelWeights(sv.contiguous(), sm, dv.contiguous(), sidx, didx, out_row, K, Rp, Rdp,
                       Ss, SdA, SdB, gather)
    kw.kx_d = K
    if lay.axis == "cols" and d:
        # pre-gather x once per call (one index_select) instead of per-element gathers in the kernel
        kw.xperm = torch.cat([sidx[: max(Ss * 64, 0)], didx[: SdA * 64]]).long()
        kw.kx, kw.kx_d, kw.xoff_d = Ss * 64, SdA * 64, Ss * 64
        kw.gather = False
    return kw


def default_config(kw: KernelWeights, M: int) -> tuple[int, int]:
    """(RT, warps) heuristic: enough CTAs for 132 SMs, enough warps per CTA to split K."""
    rows = kw.rows_sparse + kw.rows_dense
    RT = 2 if rows // 32 >= 264 else 1
    steps = kw.Ss + kw.SdA + max(kw.SdB, 0)
    warps = 8 if steps >= 32 else 4
    return RT, warps


def mmasp_forward(kw: KernelWeights, x2: torch.Tensor, out: torch.Tensor, RT: int | None = None,
                  warps: int | None = None) -> torch.Tensor:
    ext = load_extension()
    M = x2.shape[0]
    if RT is None or warps is None:
        r, w = default_config(kw, M)
        RT = RT or r
        warps = warps or w
    rows_blk = 16 * RT
    Bs = kw.rows_sparse // rows_blk
    Bd = kw.rows_dense // rows_blk
    if kw.xperm is not None:
        x2 = x2.index_select(1, kw.xperm)
    ext.spense_mmasp(kw.sv, kw.sm, kw.dv, x2, kw.sidx, kw.didx, kw.out_row, out, kw.kx, kw.kx_d, kw.xoff_d, Bs, Bd,
                     kw.Ss, kw.SdA, kw.SdB, RT, warps, kw.gather)
    return out
