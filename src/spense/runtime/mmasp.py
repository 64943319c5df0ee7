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
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from spense.errors import DeviceError, InputError
from spense.format import PackedSpense, _decode_meta, check_fp8_weights
from spense.runtime.shapes import pad_to
from spense.runtime.xops import _env_int, gathered_fragments, read_once, xfrag_min_m

_EXT = None
_EXT_ARCH = ""  # the arch the loaded extension was built for ("90a" on sm_90: spense.runtime.wgsp needs it)
_LOCK = threading.Lock()
ROW_PAD = 32  # rows padded to a multiple of this (row blocks of 16 or 32 rows)


# the extension's translation units (in csrc/), compiled in parallel by the build (ninja): the Python bindings (the one
# unit with torch/extension.h), the mma.sp decode kernels, and the GEMM on sparse warpgroup MMA (prefill; decode at
# M = 17-64).  Compile times on a 2-core CPU host: benchmarks/results/wgsd_2026-12-04/am_2d34982_cpu_build_times
_SOURCES = ("spense_bind.cpp", "spense_mmasp.cu", "spense_wgsp.cu")
_CSRC = Path(__file__).parent / "csrc"
_SRC_GLOBS = ("*.cu", "*.cuh", "*.h", "*.cpp")


def _source_files(csrc: Path = _CSRC) -> list[Path]:
    """The extension's sources: every ``.cu``, ``.cuh``, ``.h`` and ``.cpp`` file of ``csrc``, sorted."""
    return sorted(f for g in _SRC_GLOBS for f in csrc.glob(g))


def _src_hash(csrc: Path = _CSRC) -> str:
    """Hash of the extension's sources (:func:`_source_files`), names and bytes."""
    import hashlib

    h = hashlib.sha256()
    for f in _source_files(csrc):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def load_extension(verbose: bool = False):
    """Build (once, cached by torch in ~/.cache/torch_extensions) and return the extension module.

    ``SPENSE_MMASP_SO=/path/ext.so`` loads a prebuilt module instead, if ``/path/ext.so.src`` holds
    the hash of the current sources (:func:`_src_hash`; else it is ignored and the sources are built).
    """
    global _EXT, _EXT_ARCH
    with _LOCK:
        if _EXT is not None:
            return _EXT
        if not torch.cuda.is_available():
            raise DeviceError("the mmasp backend needs a CUDA GPU")
        major, minor = torch.cuda.get_device_capability()
        if major < 8:
            raise DeviceError("the mmasp backend needs sm80+ (sparse tensor cores)")
        # sm_90 builds for sm_90a (H100 / H200), whose wgmma the prefill GEMM uses; the same decode kernels
        _EXT_ARCH = "90a" if (major, minor) == (9, 0) else f"{major}{minor}"
        pre = os.environ.get("SPENSE_MMASP_SO")
        if pre and Path(pre).is_file() and Path(pre + ".src").is_file() \
                and Path(pre + ".src").read_text().strip() == _src_hash():
            import importlib.util

            spec = importlib.util.spec_from_file_location("spense_mmasp_ext", pre)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            _EXT = mod
            return _EXT
        from torch.utils.cpp_extension import load

        arch = _EXT_ARCH
        where = _build_dir()
        fresh = where is not None and _built_after_sources(where)
        if not fresh:  # a build of 1-2 minutes ahead: say so, once, before the process goes quiet
            print(f"spense: compiling the mma.sp CUDA extension for sm_{arch} (first use after an install or update: "
                  f"1-2 minutes; cached in {where or 'torch_extensions'})", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            _EXT = load(
                name="spense_mmasp_ext",
                sources=[str(_CSRC / f) for f in _SOURCES],
                extra_include_paths=[str(_CSRC)],
                extra_cflags=["-O3"],  # the bindings unit (spense_bind.cpp): torch gives .cpp units no -O of their own
                extra_cuda_cflags=["-O3", f"-gencode=arch=compute_{arch},code=sm_{arch}", "-lineinfo",
                                   "--use_fast_math", "-Xptxas=-v" if verbose else "-Xptxas=-O3"],
                verbose=verbose,
            )
        except Exception as e:
            raise DeviceError(f"building or loading the mma.sp CUDA extension failed: {_build_error_line(e)} (it needs nvcc of "
                              f"torch's CUDA and a C++ compiler; spense.runtime.mmasp.load_extension(verbose=True) "
                              f"prints the whole build)") from None
        if not fresh:
            print(f"spense: mma.sp extension ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        return _EXT


def _build_dir() -> Path | None:
    """torch's build directory of the extension (``TORCH_EXTENSIONS_DIR`` or its default), or None if unknown."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return Path(_get_build_directory("spense_mmasp_ext", False))
    except Exception:  # pragma: no cover - a torch without it
        return None


def _built_after_sources(build_dir: Path) -> bool:
    """Whether ``build_dir`` holds a module newer than every source: then the load only imports it (torch checks
    the sources itself; this only decides whether to announce a build)."""
    built = [f.stat().st_mtime for f in build_dir.glob("spense_mmasp_ext*.so")]
    srcs = [f.stat().st_mtime for f in _source_files()]
    return bool(built) and max(built) >= max(srcs)


def _build_error_line(e: Exception) -> str:
    """The line of a failed build's message that names the error: a compiler's ``file:12:3: error:`` or
    ``file(12): error:`` line (else any line with ``error`` or a tool ``not found``, else the first)."""
    import re

    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    rest = lines[1:]
    hit = next((ln for ln in rest if re.search(r"\berror\s*:|\): error", ln) and not ln.startswith("collect2")), None) \
        or next((ln for ln in rest if "error" in ln.lower() or "not found" in ln), None) \
        or (lines[0] if lines else type(e).__name__)
    return hit if len(hit) <= 240 else hit[:237] + "..."


def export_extension(dst: str) -> None:
    """Copy the built extension to ``dst`` (+ ``dst.src`` = source hash), for ``SPENSE_MMASP_SO``."""
    import shutil

    ext = load_extension()
    shutil.copy(ext.__file__, dst)
    Path(dst + ".src").write_text(_src_hash())


def _frag(a: torch.Tensor, jn: int, fp8: bool = False) -> torch.Tensor:
    """(Rp, S*jn*16) matrix -> per (row tile, K step) the A fragments in the order the kernel reads.

    bf16: [row tile][step][j][lane][8] (m16n8k16 A order): lane l's fragment j is uint4 ``32*j + l``.
    ``fp8`` (1-byte elements): [row tile][step][j//2][lane][j%2][8], so lane l's uint4 ``32*v + l``
    holds its fragments j = 2v and 2v+1 (coalesced 16-byte loads, as for bf16)."""
    Rp, C = a.shape
    S = C // (jn * 16)
    if fp8:
        v = a.reshape(Rp // 16, 2, 8, S, jn // 2, 2, 2, 4, 2)  # T, h, g, s, jp, jl, q, t, e
        return v.permute(0, 3, 4, 2, 7, 5, 6, 1, 8).contiguous().reshape(-1)  # T, s, jp, g, t, jl, q, h, e
    v = a.reshape(Rp // 16, 2, 8, S, jn, 2, 4, 2)  # T, h, g, s, j, q, t, e
    return v.permute(0, 3, 4, 2, 6, 5, 1, 7).contiguous().reshape(-1)  # T, s, j, g, t, q, h, e


@dataclass
class KernelWeights:
    sv: torch.Tensor
    sm: torch.Tensor
    dv: torch.Tensor
    sblk: torch.Tensor  # int32 (Ss,): x column of each sparse K step
    dblk: torch.Tensor  # int32 (SdA or SdB,): x column of each dense K step
    out_row: torch.Tensor
    wscale: torch.Tensor  # float32 (N,) per-output-channel scale (FP8), else a dummy
    rows_sparse: int  # padded
    rows_dense: int  # padded (axis rows)
    Ss: int
    SdA: int
    SdB: int
    fp8: bool = False
    xperm: torch.Tensor | None = None  # cols axis, columns not in 64-blocks: x gathered [sparse | dense]
    n_out: int = 0  # N (output features)

    @property
    def gather(self) -> bool:
        return self.xperm is not None

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.sv, self.sm, self.dv))


def block_steps(idx: torch.Tensor, K: int, step: int = 64) -> torch.Tensor | None:
    """Start column of each ``step``-wide K step if the sorted ``idx`` is a union of whole aligned
    ``step``-column blocks of ``[0, K)`` (the last block of ``[0, K)`` may be short); else None."""
    idx = idx.detach().cpu().long()
    n = idx.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.int32)
    starts = idx[::step]
    if (starts % step).any():
        return None
    ns = starts.numel()
    exp = (starts.repeat_interleave(step) + torch.arange(step).repeat(ns))[:n]
    if not torch.equal(exp, idx):
        return None
    if n % step and int(idx[-1]) != K - 1:
        return None
    return starts.to(torch.int32)


FP8_BIAS = 2.0 ** 120  # e4m3 bytes placed in bf16 bit positions read as value * 2^-120; the kernel
# multiplies by 2^120 in bf16 (exact), so its epilogue scale is the plain per-channel scale


def to_kernel_layout(p: PackedSpense, device) -> KernelWeights:
    """The kernel layout of ``p`` on ``device`` (FP8: scales checked, FormatError if bad)."""
    lay = p.layout
    N, K = lay.shape
    R, Ks = p.sparse_shape
    d = lay.n_dense
    fp8 = p.scale is not None or p.values.dtype == torch.float8_e4m3fn
    if fp8:
        check_fp8_weights(p.values, p.scale, "packed FP8 weight", n_out=N)
    dt = torch.uint8 if fp8 else torch.bfloat16
    vals = p.values.to(device)
    if fp8:
        vals = vals.view(torch.uint8)
    elif vals.dtype != dt:
        vals = vals.to(dt)
    Rp = pad_to(max(R, 1), ROW_PAD) if R else 0
    Ksp = pad_to(Ks, 64)
    Ss = Ksp // 64 if R and Ks else 0
    # ---- sparse values ----
    if Ss:
        vpad = torch.zeros(Rp, Ksp // 2, dtype=dt, device=device)
        vpad[:R, : Ks // 2] = vals
        sv = _frag(vpad, 2, fp8)
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
        # lane (g, t): j = t >> 1, half = t & 1; low 16 bits = row g, high = row g + 8 (the layout
        # mma.sp reads, verified on the H100: docs/runtime.md section 2)
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
        sv = torch.zeros(16, dtype=dt, device=device)
        sm = torch.zeros(1, dtype=torch.int32, device=device)
    # ---- dense region ----
    dense = p.dense.to(device)
    if fp8:
        dense = dense.view(torch.uint8)
    elif dense.dtype != dt:
        dense = dense.to(dt)
    SdA = SdB = 0
    Rdp = 0
    xperm = None
    i32 = dict(dtype=torch.int32, device=device)
    if lay.axis == "cols":
        dp = pad_to(d, 64)
        SdA = dp // 64
        if SdA:
            dpad = torch.zeros(Rp, dp, dtype=dt, device=device)
            dpad[:N, :d] = dense
            dv = _frag(dpad, 4, fp8)
        else:
            dv = torch.zeros(16, dtype=dt, device=device)
        sb = block_steps(lay.sparse_idx, K) if Ss else torch.zeros(0, dtype=torch.int32)
        db = block_steps(lay.dense_idx, K) if SdA else torch.zeros(0, dtype=torch.int32)
        if sb is None or db is None:
            # columns not in whole 64-blocks: x is gathered once per call (index_select) to
            # [sparse (padded to Ss*64) | dense (padded to SdA*64)]
            sidx = torch.zeros(Ss * 64, dtype=torch.long)
            sidx[:Ks] = lay.sparse_idx.cpu().long()
            didx = torch.zeros(SdA * 64, dtype=torch.long)
            didx[:d] = lay.dense_idx.cpu().long()
            xperm = torch.cat([sidx, didx]).to(device)
            sb = torch.arange(Ss, dtype=torch.int32) * 64
            db = Ss * 64 + torch.arange(SdA, dtype=torch.int32) * 64
        out_row = torch.full((Rp,), -1, **i32)
        out_row[:N] = torch.arange(N, **i32)
    else:
        Kp = pad_to(K, 64)
        Rdp = pad_to(d, ROW_PAD) if d else 0
        SdB = Kp // 64 if d else 0
        if d:
            dpad = torch.zeros(Rdp, Kp, dtype=dt, device=device)
            dpad[:d, :K] = dense
            dv = _frag(dpad, 4, fp8)
        else:
            dv = torch.zeros(16, dtype=dt, device=device)
        sb = torch.arange(Ss, dtype=torch.int32) * 64
        db = torch.arange(SdB, dtype=torch.int32) * 64
        out_row = torch.full((Rp + Rdp,), -1, **i32)
        out_row[:R] = lay.sparse_idx.to(**i32)
        if d:
            out_row[Rp : Rp + d] = lay.dense_idx.to(**i32)
    if fp8:
        wscale = p.scale.to(device=device, dtype=torch.float32).contiguous()
    else:
        wscale = torch.zeros(1, dtype=torch.float32, device=device)
    sblk = (sb if sb.numel() else torch.zeros(1, dtype=torch.int32)).to(**i32)
    dblk = (db if db.numel() else torch.zeros(1, dtype=torch.int32)).to(**i32)
    return KernelWeights(sv.contiguous(), sm, dv.contiguous(), sblk, dblk, out_row, wscale, Rp, Rdp,
                         Ss, SdA, SdB, fp8, xperm, N)


def _unfrag(flat: torch.Tensor, Rp: int, C: int, jn: int, fp8: bool = False) -> torch.Tensor:
    """Inverse of :func:`_frag`: the ``(Rp, C)`` matrix back from its fragment order."""
    S = C // (jn * 16)
    if fp8:
        v = flat.reshape(Rp // 16, S, jn // 2, 8, 4, 2, 2, 2, 2)  # T, s, jp, g, t, jl, q, h, e
        return v.permute(0, 7, 3, 1, 2, 5, 6, 4, 8).reshape(Rp, C)  # T, h, g, s, jp, jl, q, t, e
    v = flat.reshape(Rp // 16, S, jn, 8, 4, 2, 2, 2)  # T, s, j, g, t, q, h, e
    return v.permute(0, 6, 3, 1, 2, 5, 4, 7).reshape(Rp, C)  # T, h, g, s, j, q, t, e


def layout_indices(layout, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sparse_idx, dense_idx)`` of ``layout`` as int64 tensors on ``device``."""
    return layout.sparse_idx.to(device).long(), layout.dense_idx.to(device).long()


def unpack_kernel_layout(kw: KernelWeights, layout, dtype: torch.dtype = torch.bfloat16,
                         idx: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The dense-with-zeros weight ``W (N, K)`` of a kernel layout (exact inverse of
    :func:`to_kernel_layout`; pure torch, any device; a transient buffer, never cached).

    Sparse region: fragments -> ``values (R, Ks/2)``; metadata words -> the 4-bit group codes
    ``i0 | i1 << 2``; ``S[r, 4g + i0] = v[r, 2g]``, ``S[r, 4g + i1] = v[r, 2g + 1]``.  Dense region:
    fragments -> ``D``.  ``W[:, sparse_idx] = S``, ``W[:, dense_idx] = D`` (cols) or the same on rows.
    FP8: ``W = e4m3(bytes) * wscale[:, None]`` (computed in float32, then ``dtype``).
    ``idx``: ``(sparse_idx, dense_idx)`` already on the weights' device (:func:`layout_indices`), so
    that the call copies nothing from the host (required inside CUDA-graph capture)."""
    N, K = layout.shape
    d = layout.n_dense
    cols = layout.axis == "cols"
    R = N if cols else N - d
    Ks = K - d if cols else K
    dev = kw.sv.device
    fp8 = kw.fp8
    cdt = torch.float32 if fp8 or dtype == torch.float32 else dtype
    sidx_all, didx_all = idx if idx is not None else layout_indices(layout, dev)

    def vals_of(t):  # kernel dtype (bf16 / uint8 e4m3 bytes) -> compute dtype
        return t.view(torch.float8_e4m3fn).float() if fp8 else t.to(cdt)

    W = torch.zeros(N, K, dtype=cdt, device=dev)
    if kw.Ss and R and Ks:
        Rp, Ksp = kw.rows_sparse, kw.Ss * 64
        v = vals_of(_unfrag(kw.sv, Rp, Ksp // 2, 2, fp8))[:R, : Ks // 2]
        T = Rp // 16
        m = kw.sm.to(torch.int64).reshape(T, kw.Ss, 8, 2, 2) & 0xFFFFFFFF  # T, s, g, j, half
        m = m.permute(0, 2, 1, 3, 4)  # T, g, s, j, half
        lo = (m[..., 0] & 0xFFFF) | ((m[..., 1] & 0xFFFF) << 16)  # row g's word
        hi = ((m[..., 0] >> 16) & 0xFFFF) | (((m[..., 1] >> 16) & 0xFFFF) << 16)  # row g + 8
        word = torch.stack([lo, hi], 1).reshape(Rp, kw.Ss, 2)  # row, step, j
        shifts = torch.arange(8, device=dev) * 4
        nib = ((word[..., None] >> shifts) & 0xF).reshape(Rp, Ksp // 4)[:R, : Ks // 4]
        i0, i1 = nib & 3, nib >> 2
        G = Ks // 4
        S = torch.zeros(R, G, 4, dtype=cdt, device=dev)
        v = v.reshape(R, G, 2)
        S.scatter_(2, i0.unsqueeze(-1), v[..., :1])
        S.scatter_(2, i1.unsqueeze(-1), v[..., 1:])
        S = S.reshape(R, Ks)
        sidx = sidx_all
        if cols:
            W[:, sidx] = S
        else:
            W[sidx] = S
    if d:
        didx = didx_all
        if cols:
            dp = kw.SdA * 64
            D = vals_of(_unfrag(kw.dv, kw.rows_sparse, dp, 4, fp8))[:N, :d]
            W[:, didx] = D
        else:
            Kp = kw.SdB * 64
            D = vals_of(_unfrag(kw.dv, kw.rows_dense, Kp, 4, fp8))[:d, :K]
            W[didx] = D
    if fp8:
        W = W * kw.wscale.to(W.device)[:, None]
    return W.to(dtype)


def default_config(kw: KernelWeights, M: int) -> tuple[int, int]:
    """(RT, warps) heuristic: one 16-row tile per CTA; 8 warps to split K when K is long (>= 32 steps of
    64) and the grid is small (< 1024 CTAs), else 4.  Measured on the H200 (benchmarks/results/
    mmasp_bulk_2026-11-30): RT = 2 lost to RT = 1 on every Qwen3 shape at M = 1 with x fragments; 8
    warps won on three of the four shapes with N <= 10240 (lost 5 % on 6144 x 4096) and lost on the
    24576-row gate_up."""
    rows = kw.rows_sparse + kw.rows_dense
    steps = kw.Ss + kw.SdA + max(kw.SdB, 0)
    warps = 8 if steps >= 32 and rows // 16 < 1024 else 4
    return 1, warps


def _launch(y, sv, sm, dv, x, sblk, dblk, out_row, wscale, Bs, Bd, Ss, SdA, SdB, RT, warps, fp8, stages, xf,
            xperm):
    if not x.is_cuda:
        raise DeviceError("the mmasp kernel needs CUDA tensors")
    load_extension().spense_mmasp(sv, sm, dv, x, sblk, dblk, out_row, wscale, y, Bs, Bd, Ss, SdA, SdB, RT,
                                  warps, fp8, stages, xf, xperm)


@torch.library.custom_op("spense::mmasp_out", mutates_args=("y",))
def mmasp_out(y: torch.Tensor, sv: torch.Tensor, sm: torch.Tensor, dv: torch.Tensor, x: torch.Tensor,
              sblk: torch.Tensor, dblk: torch.Tensor, out_row: torch.Tensor, wscale: torch.Tensor, Bs: int,
              Bd: int, Ss: int, SdA: int, SdB: int, RT: int, warps: int, fp8: bool, stages: int,
              xf: torch.Tensor, xperm: bool = False) -> None:
    """The mma.sp kernel writing ``y[m, out_row[r]]`` in place (GPU only; see csrc/spense_mmasp.cu).
    ``stages`` 0: the register kernel; > 0: the bulk-copy kernel with that many ring slots (sm_90).
    ``xf``: :func:`x_fragments` of ``x`` (the kernel reads its B fragments from it), or empty.
    ``xperm``: ``x`` is :func:`x_perm` of x (the register kernel at RT = 1, M <= 8; ``xf`` empty)."""
    _launch(y, sv, sm, dv, x, sblk, dblk, out_row, wscale, Bs, Bd, Ss, SdA, SdB, RT, warps, fp8, stages, xf, xperm)


@mmasp_out.register_fake
def _(y, sv, sm, dv, x, sblk, dblk, out_row, wscale, Bs, Bd, Ss, SdA, SdB, RT, warps, fp8, stages, xf, xperm=False):
    return None


@torch.library.custom_op("spense::mmasp", mutates_args=())
def mmasp_op(sv: torch.Tensor, sm: torch.Tensor, dv: torch.Tensor, x: torch.Tensor, sblk: torch.Tensor,
             dblk: torch.Tensor, out_row: torch.Tensor, wscale: torch.Tensor, N: int, Bs: int, Bd: int, Ss: int,
             SdA: int, SdB: int, RT: int, warps: int, fp8: bool, stages: int, xf: torch.Tensor,
             xperm: bool = False) -> torch.Tensor:
    """``y (M, N)`` bf16 = the mma.sp kernel's output (every output column is written: ``out_row``
    covers ``[0, N)``), functional form for torch.compile (GPU only)."""
    y = torch.empty(x.shape[0], N, dtype=torch.bfloat16, device=x.device)
    _launch(y, sv, sm, dv, x, sblk, dblk, out_row, wscale, Bs, Bd, Ss, SdA, SdB, RT, warps, fp8, stages, xf, xperm)
    return y


@mmasp_op.register_fake
def _(sv, sm, dv, x, sblk, dblk, out_row, wscale, N, Bs, Bd, Ss, SdA, SdB, RT, warps, fp8, stages, xf, xperm=False):
    return x.new_empty(x.shape[0], N, dtype=torch.bfloat16)


@read_once
def default_stages() -> int:
    """Ring slots of the bulk-copy kernel when no measured config says otherwise: ``SPENSE_MMASP_STAGES``
    (read once; default 0, the register kernel, until the bulk kernel is measured on the device)."""
    return _env_int("SPENSE_MMASP_STAGES", 0, 0, 16)


def mmasp_forward(kw: KernelWeights, x2: torch.Tensor, out: torch.Tensor | None = None, RT: int | None = None,
                  warps: int | None = None, stages: int | None = None, xfrag: bool | None = None,
                  xf: torch.Tensor | None = None, xperm: bool = False) -> torch.Tensor:
    """``x2 @ W.T`` (bf16 x, M <= 64) through ``spense::mmasp`` (``out`` given: ``spense::mmasp_out``,
    written in place and returned).  ``(RT, warps, stages)``: the kernel config; ``xfrag``: read x
    through :func:`x_fragments` (None: the defaults, :func:`default_stages`, :func:`xfrag_min_m`).
    ``xf``: :func:`x_fragments` of ``x2`` already gathered by ``kw.xperm``, built by the caller (e.g.
    traced by torch.compile into the kernel that produces x); then ``x2`` only gives M and K.
    ``xperm``: ``x2`` is :func:`x_perm` of x (M <= 8, a layout without column gather, RT = 1; the
    register kernel whatever ``stages`` says).  e4m3 weights at M <= 16 (:func:`f16_x`): ``xf``, or ``x2`` under
    ``xperm``, may be built from x's :func:`f16_operand` instead (the register kernel, RT 1 or 2)."""
    if RT is None or warps is None:
        r, w = default_config(kw, x2.shape[0])
        RT = RT or r
        warps = warps or w
    if xperm:
        if kw.xperm is not None or RT != 1 or x2.shape[0] > 8:
            raise InputError("x_perm input: M <= 8, RT = 1 and a layout without column gather only")
        stages, xf, x2 = 0, x2.new_empty(0), x2.contiguous()
    else:
        if stages is None:
            stages = default_stages()
        if xf is not None and xf.dtype == torch.float16:  # x's f16 operand: the register kernel alone
            stages = 0
        if stages and torch.cuda.get_device_capability(x2.device)[0] < 9:  # e.g. an H100 config on an A100
            stages = 0
        if xf is None or xf.numel() == 0:
            if xfrag is None:
                xfrag = x2.shape[0] >= xfrag_min_m()
            xf = gathered_fragments(x2, kw.xperm) if xfrag else x2.new_empty(0)
        if kw.xperm is not None:
            # with xf the kernel reads x only through it: x2 then just gives M and the gathered width
            x2 = x2.new_empty(x2.shape[0], kw.xperm.numel()) if xf.numel() else x2.index_select(1, kw.xperm)
    rows_blk = 16 * RT
    Bs = kw.rows_sparse // rows_blk
    Bd = kw.rows_dense // rows_blk
    args = (kw.sv, kw.sm, kw.dv, x2, kw.sblk, kw.dblk, kw.out_row, kw.wscale)
    rest = (kw.Ss, kw.SdA, kw.SdB, RT, warps, kw.fp8, stages, xf, xperm)
    if out is None:
        return mmasp_op(*args, kw.n_out, Bs, Bd, *rest)
    mmasp_out(out, *args, Bs, Bd, *rest)
    return out
