"""Dense FP8 linear: e4m3 weights with per-output-channel scales, dynamic per-token activation scales.

``Fp8Linear`` is the dense FP8 baseline of the end-to-end benchmark (and the dense-region GEMM of an
FP8 Spense model where the runtime wants one):

* weight ``W`` ``(N, K)`` -> ``Wq = round_e4m3(W / sw[:, None])`` with ``sw[n] = amax(|W[n, :]|) / 448``;
* activation rows ``x`` ``(M, K)`` -> ``xq = round_e4m3(x / sx[:, None])`` with ``sx[m] = amax(|x[m, :]|) / 448``
  computed at run time (one fused Triton kernel on CUDA, plain torch ops elsewhere);
* ``y = (xq @ Wq.T) * sx[:, None] * sw[None, :]`` through ``torch._scaled_mm`` (row-wise scales, bf16
  output) on CUDA; for decode-sized M (<= 64) the transposed form ``(Wq @ xq.T).T`` (activation rows
  padded to 16) is also a candidate, and the faster of the two is measured once per (N, K, M bucket)
  outside CUDA-graph capture (``SPENSE_FP8_GEMM=nt|swap`` forces one).  On CPU (tests) the same
  arithmetic is emulated in float32.

Everything is CUDA-graph safe (no host synchronisation in ``forward``).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0
_EPS = 1e-12



# --------------------------------------------------------------------------------------------------
# quantisation
# --------------------------------------------------------------------------------------------------
def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(wq, scale)``: e4m3 ``(N, K)`` and float32 ``(N,)`` per-output-channel scales (amax / 448)."""
    wf = w.detach().float()
    scale = (wf.abs().amax(dim=1).clamp_min(_EPS) / FP8_MAX).float()
    wq = (wf / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return wq.contiguous(), scale.contiguous()


def _quantize_rows_torch(x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x2.float()
    s = xf.abs().amax(dim=1, keepdim=True).clamp_min(_EPS) / FP8_MAX
    q = (xf / s).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return q, s.contiguous()


_TRITON_KERNEL = None


def _triton_kernel():
    """The fused per-row amax + scale + e4m3 cast kernel (built lazily; None without Triton)."""
    global _TRITON_KERNEL
    if _TRITON_KERNEL is not None:
        return _TRITON_KERNEL
    try:
        import triton
        import triton.language as tl
    except Exception:  # pragma: no cover - triton missing
        _TRITON_KERNEL = False
        return False

    @triton.jit
    def _act_quant_rows(x_ptr, q_ptr, s_ptr, M, K, stride_x, stride_q, BLOCK_K: tl.constexpr,
                        ONE_PASS: tl.constexpr):
        row = tl.program_id(0)
        x_row = x_ptr + row * stride_x
        q_row = q_ptr + row * stride_q
        offs = tl.arange(0, BLOCK_K)
        if row >= M:  # padding rows (GEMM alignment): zeros, scale 1
            for k0 in range(0, K, BLOCK_K):
                tl.store(q_row + k0 + offs, tl.zeros([BLOCK_K], dtype=tl.float32).to(tl.float8e4nv),
                         mask=(k0 + offs) < K)
            tl.store(s_ptr + row, 1.0)
        elif ONE_PASS:
            msk = offs < K
            x = tl.load(x_row + offs, mask=msk, other=0.0).to(tl.float32)
            amax = tl.max(tl.abs(x), axis=0)
            s = tl.maximum(amax, 1e-12) / 448.0
            q = tl.minimum(tl.maximum(x / s, -448.0), 448.0)
            tl.store(q_row + offs, q.to(tl.float8e4nv), mask=msk)
            tl.store(s_ptr + row, s)
        else:
            acc = tl.zeros([BLOCK_K], dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                msk = (k0 + offs) < K
                x = tl.load(x_row + k0 + offs, mask=msk, other=0.0).to(tl.float32)
                acc = tl.maximum(acc, tl.abs(x))
            amax = tl.max(acc, axis=0)
            s = tl.maximum(amax, 1e-12) / 448.0
            for k0 in range(0, K, BLOCK_K):
                msk = (k0 + offs) < K
                x = tl.load(x_row + k0 + offs, mask=msk, other=0.0).to(tl.float32)
                q = tl.minimum(tl.maximum(x / s, -448.0), 448.0)
                tl.store(q_row + k0 + offs, q.to(tl.float8e4nv), mask=msk)
            tl.store(s_ptr + row, s)

    _TRITON_KERNEL = _act_quant_rows
    return _act_quant_rows


def quantize_rows(x2: torch.Tensor, rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic per-token quantisation of ``x2`` ``(M, K)``: ``(xq e4m3 (R, K), sx float32 (R, 1))``.

    ``rows`` (>= M, default M) pads the result with zero rows of scale 1 (GEMM alignment).
    """
    M, K = x2.shape
    R = M if rows is None else max(int(rows), M)
    if x2.device.type == "cuda":
        kern = _triton_kernel()
        if kern:
            import triton

            x2 = x2.contiguous()
            q = torch.empty(R, K, dtype=FP8_DTYPE, device=x2.device)
            s = torch.empty(R, 1, dtype=torch.float32, device=x2.device)
            if R:
                one = K <= 8192
                bk = triton.next_power_of_2(K) if one else 2048
                kern[(R,)](x2, q, s, M, K, x2.stride(0), q.stride(0), BLOCK_K=bk, ONE_PASS=one,
                           num_warps=8 if bk >= 4096 else 4)
            return q, s
    q, s = _quantize_rows_torch(x2)
    if R > M:
        q = torch.cat([q, torch.zeros(R - M, K, device=q.device).to(FP8_DTYPE)])
        s = torch.cat([s, s.new_ones(R - M, 1)])
    return q, s


# --------------------------------------------------------------------------------------------------
# GEMM
# --------------------------------------------------------------------------------------------------
SWAP_MAX_M = 64  # the swapped form is only a candidate for decode-sized M
_CHOICE: dict[tuple[int, int, int], str] = {}  # (N, K, M bucket) -> "nt" | "swap"


def _bucket(M: int) -> int:
    b = 1
    while b < M:
        b *= 2
    return b


def _mm_nt(xq, sx, wq, sw, out_dtype):
    """``y (M, N) = xq @ wq.T`` with row-wise scales (cuBLASLt tiles along M: wasteful for tiny M)."""
    return torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw.view(1, -1), out_dtype=out_dtype)


def _mm_swap(xq, sx, wq, sw, out_dtype):
    """``y.T (N, Mp) = wq @ xq.T``: the weight's N rows fill the GEMM's M tiles (decode: tiny M);
    ``xq`` must have a multiple of 16 rows (padding rows are discarded)."""
    return torch._scaled_mm(wq, xq.t(), scale_a=sw.view(-1, 1), scale_b=sx.view(1, -1), out_dtype=out_dtype)


def _time(fn, reps: int = 10) -> float:
    fn()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / reps


def gemm_choice(M: int, N: int, K: int, device: torch.device) -> str:
    """``nt`` or ``swap`` for this shape and M bucket: measured once (outside CUDA-graph capture),
    or ``SPENSE_FP8_GEMM=nt|swap`` to force one."""
    forced = os.environ.get("SPENSE_FP8_GEMM")
    if forced in ("nt", "swap"):
        return forced if (forced == "nt" or M <= SWAP_MAX_M) else "nt"
    if M > SWAP_MAX_M:
        return "nt"
    key = (N, K, _bucket(M))
    if key in _CHOICE:
        return _CHOICE[key]
    if torch.cuda.is_current_stream_capturing():
        return "swap"  # not measured yet and cannot measure now: the usual winner for decode
    Mb, Mp = _bucket(M), max(16, (_bucket(M) + 15) // 16 * 16)
    x = torch.randn(Mp, K, device=device).to(FP8_DTYPE)
    w = torch.randn(N, K, device=device).to(FP8_DTYPE)
    sx, sw = torch.ones(Mp, 1, device=device), torch.ones(N, device=device)
    times = {}
    for name, fn in (("nt", lambda: _mm_nt(x[:Mb], sx[:Mb], w, sw, torch.bfloat16)),
                     ("swap", lambda: _mm_swap(x, sx, w, sw, torch.bfloat16))):
        try:
            times[name] = _time(fn)
        except Exception as e:  # pragma: no cover - depends on the torch/cuBLAS build
            warnings.warn(f"FP8 GEMM form {name!r} unavailable for {N}x{K}, M={Mb}: {e}", RuntimeWarning,
                          stacklevel=2)
    _CHOICE[key] = min(times, key=times.get) if times else "nt"
    return _CHOICE[key]


def fp8_mm(xq: torch.Tensor, sx: torch.Tensor, wq: torch.Tensor, sw: torch.Tensor,
           out_dtype: torch.dtype = torch.bfloat16, m: int | None = None) -> torch.Tensor:
    """``(xq * sx) @ (wq * sw[:, None]).T`` for e4m3 ``xq (R, K)``, ``wq (N, K)``; ``sx (R, 1)``, ``sw (N,)``.

    ``m``: the number of real rows of ``xq`` (the rest is padding); the result has ``m`` rows.
    """
    M = xq.shape[0] if m is None else m
    if xq.device.type == "cuda":
        if xq.shape[0] % 16 == 0 and gemm_choice(M, wq.shape[0], wq.shape[1], xq.device) == "swap":
            return _mm_swap(xq, sx, wq, sw, out_dtype)[:, :M].t().contiguous()
        return _mm_nt(xq[:M], sx[:M], wq, sw, out_dtype)
    # CPU / other devices: the same arithmetic in float32
    y = (xq[:M].float() * sx[:M]) @ (wq.float() * sw[:, None]).t()
    return y.to(out_dtype)


class Fp8Linear(nn.Module):
    """Dense ``nn.Linear`` replacement with an e4m3 weight (per-output-channel scales)."""

    def __init__(self, weight_fp8: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None,
                 out_dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        if weight_fp8.dtype != FP8_DTYPE:
            raise TypeError(f"Fp8Linear needs a {FP8_DTYPE} weight, got {weight_fp8.dtype}")
        self.out_features, self.in_features = weight_fp8.shape
        self.register_buffer("weight", weight_fp8.contiguous())
        self.register_buffer("scale", scale.float().contiguous())
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(out_dtype).clone(),
                                                           requires_grad=False)
        self.out_dtype = out_dtype

    @classmethod
    def from_linear(cls, lin: nn.Linear, out_dtype: torch.dtype | None = None) -> "Fp8Linear":
        wq, s = quantize_weight(lin.weight)
        dt = out_dtype or (lin.weight.dtype if lin.weight.dtype in (torch.bfloat16, torch.float16)
                           else torch.bfloat16)
        return cls(wq, s, lin.bias, out_dtype=dt)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=e4m3"

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.weight.float() * self.scale[:, None]).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        M = x2.shape[0]
        rows = M
        if x2.device.type == "cuda" and M <= SWAP_MAX_M:
            rows = max(16, (M + 15) // 16 * 16)  # padded rows: the swapped GEMM form needs them
        xq, sx = quantize_rows(x2, rows)
        y = fp8_mm(xq, sx, self.weight, self.scale, self.out_dtype, m=M)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype).reshape(*lead, self.out_features)
