"""The dense-with-zeros weight of an mma.sp kernel layout in two Triton launches: the prefill path of
compacted layers (:meth:`spense.runtime.linear.SpenseLinear.dense_weight`).

:func:`spense.runtime.mmasp.unpack_kernel_layout` is the exact reference in pure tensor ops; it builds
int64 temporaries several times the weight's size and takes many launches per layer. Here each
program writes one 16-row x 64-column tile of ``W`` straight from the layout the decode kernel reads,
with that kernel's own addressing (``out_row``, ``sblk`` / ``dblk``, or ``xperm``):

* sparse step ``s`` of row tile ``T``: the group ``G = k // 4`` of column ``k`` sits in metadata word
  ``sm[((T Ss + s) 8 + g) 4 + 2 j + n // 4]`` (``j = G // 8``, ``n = G % 8``, row ``i = 8 h + g``) as the
  nibble ``c = word >> (16 h + 4 (n % 4)) & 0xF``; with ``i0 = c & 3``, ``i1 = c >> 2``,

      W[out_row[16 T + i], col(s, k)] = v0 if k % 4 == i0,  v1 if k % 4 == i1,  else 0,

  ``v0, v1`` the group's two values at compressed columns ``16 j + 2 n (+1)`` of the step's
  fragments (:func:`spense.runtime.mmasp._frag` order);
* dense step ``s``: ``W[out_row[..], col(s, k)]`` = the fragment element of column ``k``.

``col(s, k)`` = ``sblk[s] + k`` (``dblk`` for dense; columns past ``K`` masked) or, for gathered
layouts, ``xperm[s 64 + k]`` (``xperm[Ss 64 + s 64 + k]`` for dense), past the region's width masked.
FP8: ``W = e4m3 * wscale[row]`` in float32, then bf16, as the reference. Every element of ``W`` is
written by exactly one program (the two regions tile it), so ``W`` starts uninitialised."""

from __future__ import annotations

import os
import warnings

import torch

try:
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - no triton
    triton = None

if triton is not None:

    @triton.jit
    def _scaled(val, ws_ptr, row, w_ptr):
        """``val * wscale[row]`` in float32, rounded to nearest-even when ``W`` is bf16: done on the bits,
        since the CPU interpreter's float32 -> bf16 cast truncates (the GPU's rounds to nearest)."""
        val = val * tl.load(ws_ptr + row, mask=row >= 0, other=0.0)
        if w_ptr.dtype.element_ty == tl.bfloat16:
            b = val.to(tl.uint32, bitcast=True)
            b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
            val = b.to(tl.float32, bitcast=True)  # exactly a bf16 value now
        return val

    @triton.jit
    def _col_and_mask(blk_ptr, xperm_ptr, s, k, base, width, K, GATHER: tl.constexpr):
        """The W column of step ``s``, column ``k`` (shape of ``k``), and whether it exists."""
        if GATHER:
            ok = s * 64 + k < width
            col = tl.load(xperm_ptr + base + s * 64 + k, mask=ok, other=0)
        else:
            col = tl.load(blk_ptr + s) + k
            ok = col < K
        return col, ok

    @triton.jit
    def _unpack_sparse_kernel(sv_ptr, sm_ptr, blk_ptr, xperm_ptr, orow_ptr, ws_ptr, w_ptr, K, ldw, Ss,
                              width, FP8: tl.constexpr, GATHER: tl.constexpr, RAW: tl.constexpr):
        """Sparse step ``s`` of row tile ``T`` by groups of 4 columns: one metadata nibble and one value
        pair per group (a ``16 x 16 x 4`` tile, reshaped to ``16 x 64``; 1.2x faster on the H200 than
        the same per element, benchmarks/results/prefill_2026-12-01)."""
        T = tl.program_id(0)
        s = tl.program_id(1)
        i = tl.arange(0, 16)[:, None]  # row in the tile: i = 8 h + g
        G = tl.arange(0, 16)[None, :]  # group of 4 columns in the step
        g = i % 8
        h = i // 8
        j = G // 8
        n = G % 8
        t = n % 4
        q = n // 4
        blk = (T * Ss + s).to(tl.int64)
        word = tl.load(sm_ptr + (blk * 8 + g) * 4 + 2 * j + q)
        code = (word >> (16 * h + 4 * t)) & 0xF
        if FP8:
            off = (((g * 4 + t) * 2 + j) * 2 + q) * 4 + h * 2
        else:
            off = (((j * 8 + g) * 4 + t) * 2 + q) * 4 + h * 2
        v0 = tl.load(sv_ptr + blk * 512 + off)[:, :, None]
        v1 = tl.load(sv_ptr + blk * 512 + off + 1)[:, :, None]
        if not RAW:  # RAW: the e4m3 bytes as they are (a zero byte is +0.0)
            v0 = v0.to(tl.float32)
            v1 = v1.to(tl.float32)
        p = tl.arange(0, 4)[None, None, :]
        val = tl.where(p == (code & 3)[:, :, None], v0,
                       tl.where(p == (code >> 2)[:, :, None], v1, tl.zeros_like(v1)))
        val = tl.reshape(val, (16, 64))
        k = tl.arange(0, 64)[None, :]
        row = tl.load(orow_ptr + T * 16 + i)
        col, ok = _col_and_mask(blk_ptr, xperm_ptr, s, k, 0, width, K, GATHER)
        ok = ok & (row >= 0)
        if FP8 and not RAW:
            val = _scaled(val, ws_ptr, row, w_ptr)
        tl.store(w_ptr + row.to(tl.int64) * ldw + col, val.to(w_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def _unpack_dense_kernel(dv_ptr, blk_ptr, xperm_ptr, orow_ptr, ws_ptr, w_ptr, K, ldw, Sd, row0, xbase,
                             width, FP8: tl.constexpr, GATHER: tl.constexpr, RAW: tl.constexpr):
        T = tl.program_id(0)
        s = tl.program_id(1)
        i = tl.arange(0, 16)[:, None]
        k = tl.arange(0, 64)[None, :]
        g = i % 8
        h = i // 8
        t = (k // 2) % 4
        q = (k // 8) % 2
        e = k % 2
        if FP8:  # (jp, g, t, jl, q, h, e) bytes
            off = (((((k // 32) * 8 + g) * 4 + t) * 2 + (k // 16) % 2) * 2 + q) * 4 + h * 2 + e
        else:  # (j, g, t, q, h, e)
            off = ((((k // 16) * 8 + g) * 4 + t) * 2 + q) * 4 + h * 2 + e
        val = tl.load(dv_ptr + (T * Sd + s).to(tl.int64) * 1024 + off)
        if not RAW:
            val = val.to(tl.float32)
        row = tl.load(orow_ptr + row0 + T * 16 + i)
        col, ok = _col_and_mask(blk_ptr, xperm_ptr, s, k, xbase, width, K, GATHER)
        ok = ok & (row >= 0)
        if FP8 and not RAW:
            val = _scaled(val, ws_ptr, row, w_ptr)
        tl.store(w_ptr + row.to(tl.int64) * ldw + col, val.to(w_ptr.dtype.element_ty), mask=ok)


def unpack_kernel_layout_triton(kw, layout, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """``W (N, K)`` of the kernel layout ``kw`` of ``layout`` (same result as
    :func:`spense.runtime.mmasp.unpack_kernel_layout`), on the layout's device (CUDA, or CPU under
    ``TRITON_INTERPRET=1``).  ``dtype=torch.float8_e4m3fn`` (FP8 layouts only): the e4m3 weights
    themselves, unscaled (``W = that * wscale[:, None]``), for an FP8 GEMM."""
    if dtype == torch.float8_e4m3fn and not kw.fp8:
        raise ValueError("an e4m3 unpack needs an FP8 kernel layout")
    if triton is None:
        raise RuntimeError("unpack_kernel_layout_triton needs triton")
    N, K = layout.shape
    d = layout.n_dense
    cols = layout.axis == "cols"
    Ks = K - d if cols else K
    dev = kw.sv.device
    if dev.type == "cuda":
        with torch.cuda.device(dev):  # Triton launches on the current device
            return _launch(kw, N, K, Ks, d, cols, dtype)
    return _launch(kw, N, K, Ks, d, cols, dtype)


def _launch(kw, N: int, K: int, Ks: int, d: int, cols: bool, dtype: torch.dtype) -> torch.Tensor:
    raw = dtype == torch.float8_e4m3fn  # bytes in, bytes out
    W = torch.empty(N, K, dtype=torch.uint8 if raw else dtype, device=kw.sv.device)
    gather = kw.xperm is not None
    xperm = kw.xperm if gather else kw.sblk  # a dummy pointer when not gathered
    sv, dv = kw.sv, kw.dv
    if kw.fp8 and not raw:  # e4m3 values, scaled in the kernel
        sv, dv = sv.view(torch.float8_e4m3fn), dv.view(torch.float8_e4m3fn)
    if kw.Ss:
        _unpack_sparse_kernel[(kw.rows_sparse // 16, kw.Ss)](
            sv, kw.sm, kw.sblk, xperm, kw.out_row, kw.wscale, W, K, W.stride(0), kw.Ss, Ks,
            FP8=kw.fp8, GATHER=gather, RAW=raw)
    if cols and kw.SdA:
        _unpack_dense_kernel[(kw.rows_sparse // 16, kw.SdA)](
            dv, kw.dblk, xperm, kw.out_row, kw.wscale, W, K, W.stride(0), kw.SdA, 0, kw.Ss * 64, d,
            FP8=kw.fp8, GATHER=gather, RAW=raw)
    elif not cols and kw.SdB:
        _unpack_dense_kernel[(kw.rows_dense // 16, kw.SdB)](
            dv, kw.dblk, xperm, kw.out_row, kw.wscale, W, K, W.stride(0), kw.SdB, kw.rows_sparse, 0, K,
            FP8=kw.fp8, GATHER=False, RAW=raw)
    return W.view(torch.float8_e4m3fn) if raw else W


def _triton_checked(ok: dict, kind: tuple, kw, layout, dtype: torch.dtype, expect, what: str, fallback: str):
    """``W`` from :func:`unpack_kernel_layout_triton`, or None where it failed or differed before for
    this ``kind`` of layout (``ok``: kind -> bool).  ``expect``: None, or a test of ``W`` run on the first
    call per kind that has one (the kind is then marked).  A failure or a difference is warned once and
    returns None for the rest of the process (the caller takes its ``fallback``)."""
    if not ok.get(kind, True):
        return None
    try:
        w = unpack_kernel_layout_triton(kw, layout, dtype)
    except torch.cuda.OutOfMemoryError:  # a fallback needs more memory still
        raise
    except Exception as e:  # it cannot compile or launch here
        ok[kind] = False
        warnings.warn(f"spense: {what} unavailable ({type(e).__name__}: {e}); {fallback}", RuntimeWarning, stacklevel=3)
        return None
    if expect is not None and kind not in ok:
        ok[kind] = bool(expect(w))
        if not ok[kind]:
            warnings.warn(f"spense: the {what} differs for {kind} layouts on this GPU; {fallback}", RuntimeWarning,
                          stacklevel=3)
            return None
    return w


# per layout kind (FP8, axis, x gathered): False once the Triton unpack failed or differed from the
# reference; True once it matched it bit for bit (unpack_weight with check=True)
_OK: dict[tuple[bool, str, bool], bool] = {}


def unpack_weight(kw, layout, idx: tuple[torch.Tensor, torch.Tensor], check: bool = False) -> torch.Tensor:
    """``W (N, K)`` bf16 of the kernel layout: on CUDA :func:`unpack_kernel_layout_triton`, unless it
    failed or differed before for this kind of layout, else (and on CPU) the tensor-op reference
    :func:`spense.runtime.mmasp.unpack_kernel_layout` (``idx``: its :func:`~spense.runtime.mmasp.layout_indices`).
    ``check``: the first such call per kind compares the two bit for bit (SpenseLinear.compact, outside
    any graph capture; it also compiles the kernel there).  A failure or a difference is warned once
    and sends that kind to the reference path for the rest of the process."""
    from spense.runtime.mmasp import unpack_kernel_layout

    def reference():
        return unpack_kernel_layout(kw, layout, torch.bfloat16, idx)

    if kw.sv.is_cuda and triton is not None:
        kind = (kw.fp8, layout.axis, kw.xperm is not None)
        fast = _triton_checked(_OK, kind, kw, layout, torch.bfloat16,
                               (lambda w: torch.equal(w, reference())) if check else None,
                               "Triton unpack", "tensor-op unpack")
        if fast is not None:
            return fast
    return reference()


def fp8_prefill_enabled() -> bool:
    """``SPENSE_FP8_PREFILL=fp8``: compacted FP8 layers prefill through their e4m3 weights and the FP8
    dense baseline's kernel for that shape and M (:func:`spense.runtime.fp8.choose`: W8A8
    ``_scaled_mm`` where it wins, as FP8 dense prefills) instead of a bf16 unpack and cuBLAS BF16.
    Off by default until it is timed on a GPU (docs/runtime.md section 11)."""
    return os.environ.get("SPENSE_FP8_PREFILL", "bf16") == "fp8"


# per layout kind (axis, x gathered) of FP8 layouts: whether the e4m3 unpack matched the bf16 one
_OK_E4M3: dict[tuple[str, bool], bool] = {}


def unpack_weight_e4m3(kw, layout, ref: torch.Tensor | None = None) -> torch.Tensor | None:
    """The unscaled e4m3 ``W`` of an FP8 kernel layout on CUDA (``W = that * wscale[:, None]``), or None
    where the Triton unpack is unavailable or failed its check for this kind of layout.  ``ref``: the
    bf16 ``W`` of the same layout; the first call per kind given one checks ``e4m3 * wscale == ref``
    bit for bit (SpenseLinear.compact), and a failure or a difference sends the kind back to None."""
    if not (kw.fp8 and kw.sv.is_cuda and triton is not None):
        return None
    expect = None if ref is None else (
        lambda w8: torch.equal((w8.float() * kw.wscale[:, None]).to(torch.bfloat16), ref))
    return _triton_checked(_OK_E4M3, (layout.axis, kw.xperm is not None), kw, layout, torch.float8_e4m3fn,
                           expect, "e4m3 unpack", "bf16 prefill")
