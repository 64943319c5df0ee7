"""Dense FP8 linear (e4m3 weight, per-output-channel scale): the FP8 dense baseline.

Weight quantisation has one source, :func:`spense.format.pack` (``fp8=True``: ``scale[n] =
amax(|W[n, :]|) / 448``, ``Wq = round_e4m3(W / scale[:, None])``); :func:`quantize_weight` calls it
with an all-dense layout.  ``Fp8Linear`` computes ``y ~= x @ (Wq * scale[:, None]).T`` by the fastest
of these kernels, chosen per (device, N, K, M bucket):

* ``w8a16:<BN>x<BK>x<SK>x<warps>[x<mode>[x<stages>[x<serial>]]]`` — our Triton weight-only kernel
  (:mod:`.fp8_dense`, op ``spense::fp8_w8a16_mm``): bf16 x, e4m3 -> bf16 in registers, fp32 accumulation, split-K
  (``stages``: Triton's pipelining depth, default 3; ``serial`` 1: the slices summed in the same launch).
  Equals the dequantised-weight reference up to the bf16 output rounding.
* ``w8a16h:<BN>x<BK>x<SK>x<warps>`` — the same kernel on x's f16 operand ``x * 2^-8``
  (:func:`~spense.runtime.xops.f16_operand`, plain tensor ops before the op: fused into the op producing x
  when compiled): e4m3 -> f16 in registers (one cvt a pair), f16 ``tl.dot``, 2^8 back in the epilogue, bf16
  out.  Exact for |x| in [2^-6, 2^24) as the bf16 kind (f16 keeps more mantissa bits).  Measured on the H200
  (benchmarks/results/wgsd_2026-12-01, ah): 24-31 % less time than the best ``w8a16`` config on the 8B / 32B
  gate_up and down shapes at M = 1 and 16 (the e4m3 -> bf16 widening has no single instruction on sm_90).
* ``nt`` / ``swap`` — W8A8 ``torch._scaled_mm``: x quantised per token (``sx[m] = amax(|x[m]|)/448``,
  op ``spense::fp8_quant_rows``) and ``y = (xq @ Wq.T) * sx * scale``, either as is (``nt``) or
  transposed ``(Wq @ xq.T).T`` with the token rows padded to 16 (``swap``, decode M only).
  Activation rounding: ~1e-2 relative error vs the reference.  A weight whose N or K is not a multiple
  of 16 (cuBLASLt's FP8 bound) runs the ``w8a16`` kernel under these names instead.
* ``compiled`` — ``torch.compile`` of ``F.linear(x, Wq.to(bf16)) * scale`` (explicit only: it lost
  everywhere in the v4 H200 measurement).
* ``sk`` — our stream-K CUDA kernel (:mod:`.wgsp`, op ``spense::wgsd_apply``; sm_90, M <= 64) on the weight
  laid out as the decode layout's dense rows (:func:`~spense.runtime.wgsp.dense_fp8_kernel_weights`):
  e4m3 -> bf16 in registers, bf16 wgmma, the scales in the epilogue; within bf16 rounding of the reference.
  A layer whose choice is ``sk`` for some M bucket holds that layout beside its weight (built by
  :meth:`Fp8Linear.tune`, before any capture or trace): twice the weight's bytes.

The choice is measured once per (device, N, K, M bucket) on first use outside CUDA-graph capture
(CUDA graphs, weight copies rotated past L2) and kept in memory (:data:`CHOICES`), or set from a
measured table (:func:`load_table`, keyed by device name + compute capability).  Not measured and
not measurable (during capture / tracing): ``w8a16`` with its default config for M <= 64, else ``nt``.
On CPU the reference arithmetic runs (float32).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from spense.errors import InputError
from spense.format import check_fp8_weights  # noqa: F401 (re-exported: the FP8 layer's load-time check)
from spense.runtime import wgsp
from spense.runtime.fp8_dense import (DECODE_CONFIGS, EXTRA_CONFIGS, MAX_DECODE_M, PREFILL_CONFIG, default_config,
                                      fits, fp8_w8a16_mm, tile_counters)
from spense.runtime.shapes import bucket, own_weight, pad_to
from spense.runtime.timing import time_graph
from spense.runtime.xops import f16_operand

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0
_EPS = 1e-12
SWAP_MAX_M = 64  # the swapped form is only a candidate for decode-sized M
SK_MAX_M = wgsp.WGSD_MAX_M  # the stream-K kind serves decode-sized M only
COMPILED_MAX_M = 0  # compiled dequant + linear: measured 2.4-3.5x slower than w8a16 at M=1 on the H200 (v4), so
# not an auto candidate; still selectable as kernel="compiled"


# --------------------------------------------------------------------------------------------------
# weights: quantisation and the load-time check (both from spense.format)
# --------------------------------------------------------------------------------------------------
def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(wq, scale)``: e4m3 ``(N, K)`` and float32 ``(N,)`` scales, by :func:`spense.format.pack`
    (all-dense layout, so the same rounding as every packed FP8 weight)."""
    from spense.format import SpenseLayout, pack

    N, K = w.shape
    lay = SpenseLayout((N, K), "rows", torch.arange(N))
    p = pack(w.detach(), lay, fp8=True)
    return p.dense.contiguous(), p.scale.contiguous()


# --------------------------------------------------------------------------------------------------
# activations: per-token e4m3 quantisation (op spense::fp8_quant_rows)
# --------------------------------------------------------------------------------------------------
def _quantize_rows_torch(x2: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``sx[m] = max(amax|x[m]|, 1e-12) / 448``, ``xq = round_e4m3(clamp(x / sx))``; zero rows of
    scale 1 pad the result to ``rows``."""
    M, K = x2.shape
    xf = x2.float()
    s = xf.abs().amax(dim=1, keepdim=True).clamp_min(_EPS) / FP8_MAX
    q = (xf / s).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    if rows > M:
        q = torch.cat([q, torch.zeros(rows - M, K, device=q.device).to(FP8_DTYPE)])
        s = torch.cat([s, s.new_ones(rows - M, 1)])
    return q.contiguous(), s.contiguous()


_TRITON_KERNEL = None


def _triton_kernel():
    """The fused per-row amax + scale + e4m3 cast kernel (built lazily; False without Triton)."""
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
    def _act_quant_rows(x_ptr, q_ptr, s_ptr, M, K, stride_x, stride_q, BLOCK_K: tl.constexpr):
        row = tl.program_id(0)
        x_row = x_ptr + row * stride_x
        q_row = q_ptr + row * stride_q
        offs = tl.arange(0, BLOCK_K)
        if row >= M:  # padding rows (GEMM alignment): zeros, scale 1
            for k0 in range(0, K, BLOCK_K):
                tl.store(q_row + k0 + offs, tl.zeros([BLOCK_K], dtype=tl.float32).to(tl.float8e4nv),
                         mask=(k0 + offs) < K)
            tl.store(s_ptr + row, 1.0)
        else:
            acc = tl.zeros([BLOCK_K], dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                msk = (k0 + offs) < K
                x = tl.load(x_row + k0 + offs, mask=msk, other=0.0).to(tl.float32)
                acc = tl.maximum(acc, tl.abs(x))
            s = tl.maximum(tl.max(acc, axis=0), 1e-12) / 448.0
            for k0 in range(0, K, BLOCK_K):
                msk = (k0 + offs) < K
                x = tl.load(x_row + k0 + offs, mask=msk, other=0.0).to(tl.float32)
                q = tl.minimum(tl.maximum(x / s, -448.0), 448.0)
                tl.store(q_row + k0 + offs, q.to(tl.float8e4nv), mask=msk)
            tl.store(s_ptr + row, s)

    _TRITON_KERNEL = _act_quant_rows
    return _act_quant_rows


@torch.library.custom_op("spense::fp8_quant_rows", mutates_args=())
def fp8_quant_rows(x: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token e4m3 quantisation of ``x`` ``(M, K)``: ``(xq (R, K) e4m3, sx (R, 1) float32)``,
    ``R = max(rows, M)`` (extra rows: zeros, scale 1)."""
    M, K = x.shape
    R = max(int(rows), M)
    kern = _triton_kernel() if x.is_cuda else False
    if not kern:
        return _quantize_rows_torch(x, R)
    import triton

    x = x.contiguous()
    q = torch.empty(R, K, dtype=FP8_DTYPE, device=x.device)
    s = torch.empty(R, 1, dtype=torch.float32, device=x.device)
    if R:
        bk = min(triton.next_power_of_2(max(K, 16)), 4096)
        kern[(R,)](x, q, s, M, K, x.stride(0), q.stride(0), BLOCK_K=bk, num_warps=8 if bk >= 4096 else 4)
    return q, s


@fp8_quant_rows.register_fake
def _(x, rows):
    R = max(int(rows), x.shape[0])
    return (x.new_empty(R, x.shape[1], dtype=FP8_DTYPE), x.new_empty(R, 1, dtype=torch.float32))


def quantize_rows(x2: torch.Tensor, rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic per-token quantisation (see ``spense::fp8_quant_rows``); ``rows`` pads (default M)."""
    return fp8_quant_rows(x2, x2.shape[0] if rows is None else int(rows))


# --------------------------------------------------------------------------------------------------
# GEMM forms
# --------------------------------------------------------------------------------------------------
def _mm_nt(xq, sx, wq, sw, out_dtype):
    """``y (M, N) = xq @ wq.T`` with row-wise scales (cuBLASLt tiles along M: wasteful for tiny M)."""
    return torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw.view(1, -1), out_dtype=out_dtype)


def _mm_swap(xq, sx, wq, sw, out_dtype):
    """``y.T (N, Mp) = wq @ xq.T``: the weight's N rows fill the GEMM's M tiles (decode: tiny M);
    ``xq`` must have a multiple of 16 rows (padding rows are discarded)."""
    return torch._scaled_mm(wq, xq.t(), scale_a=sw.view(-1, 1), scale_b=sx.view(1, -1), out_dtype=out_dtype)


def fp8_mm(xq: torch.Tensor, sx: torch.Tensor, wq: torch.Tensor, sw: torch.Tensor,
           out_dtype: torch.dtype = torch.bfloat16, m: int | None = None, swap: bool = False) -> torch.Tensor:
    """W8A8 ``(xq * sx) @ (wq * sw[:, None]).T`` for e4m3 ``xq (R, K)``, ``wq (N, K)``; ``m`` real rows."""
    M = xq.shape[0] if m is None else m
    if xq.device.type == "cuda":
        if swap and xq.shape[0] % 16 == 0:
            return _mm_swap(xq, sx, wq, sw, out_dtype)[:, :M].t().contiguous()
        return _mm_nt(xq[:M], sx[:M], wq, sw, out_dtype)
    y = (xq[:M].float() * sx[:M]) @ (wq.float() * sw[:, None]).t()  # CPU: same arithmetic in float32
    return y.to(out_dtype)


def _dequant_linear(x, wq, s):
    return F.linear(x, wq.to(x.dtype)) * s.to(x.dtype)


_COMPILED = None


def _compiled():
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(_dequant_linear, dynamic=False, fullgraph=True)
    return _COMPILED


def scaled_mm_fits(wq: torch.Tensor) -> bool:
    """Whether ``torch._scaled_mm`` takes this weight (N and K multiples of 16); where not, the W8A8 kinds run
    the weight-only kernel instead (never an error, never a wrong result)."""
    return wq.shape[0] % 16 == 0 and wq.shape[1] % 16 == 0


def run_kind(kind: str, x2: torch.Tensor, wq: torch.Tensor, sw: torch.Tensor,
             out_dtype: torch.dtype = torch.bfloat16, kw=None, xh: torch.Tensor | None = None) -> torch.Tensor:
    """``x2 @ (wq * sw[:, None]).T`` by the kernel ``kind`` (see the module doc); ``sk`` takes the weight's
    kernel layout ``kw`` (:func:`~spense.runtime.wgsp.dense_fp8_kernel_weights`) instead of ``wq``, ``sw``.
    ``xh``: x2's f16 operand made beforehand (:func:`measure`), for the kinds that take one (``w8a16h``, and
    ``sk`` under the stream-K variant bit 2048); else they make it here (fused upstream when compiled)."""
    M = x2.shape[0]
    if kind == "sk":
        if kw is None:
            raise InputError("FP8 GEMM kind 'sk' needs the weight's kernel layout (wgsp.dense_fp8_kernel_weights)")
        xin = x2.to(torch.bfloat16)
        if wgsp.wgsd_f16_x(kw, M):
            xin = f16_operand(xin) if xh is None else xh
        return wgsp.wgsd_apply(xin, *wgsp.kernel_weights_op_args(kw)).to(out_dtype)
    if kind.startswith("w8a16h"):
        cfg = parse_cfg(kind) or (0, 0, 0, 0)
        xin = f16_operand(x2.to(torch.bfloat16)) if xh is None else xh
        return fp8_w8a16_mm(xin, wq, sw, *cfg, xh=True).to(out_dtype)
    if kind.startswith("w8a16"):
        cfg = parse_cfg(kind) or (0, 0, 0, 0)
        return fp8_w8a16_mm(x2.to(out_dtype), wq, sw, *cfg)
    if kind in ("nt", "swap") and x2.is_cuda and not scaled_mm_fits(wq):  # cuBLASLt: dims in sixteens
        return fp8_w8a16_mm(x2.to(out_dtype), wq, sw)
    if kind in ("nt", "swap"):
        swap = kind == "swap" and x2.is_cuda and M <= SWAP_MAX_M
        xq, sx = fp8_quant_rows(x2, pad_to(max(M, 1), 16) if swap else M)
        return fp8_mm(xq, sx, wq, sw, out_dtype, m=M, swap=swap)
    if kind == "compiled":
        if not x2.is_cuda or torch.compiler.is_compiling():
            return _dequant_linear(x2.to(out_dtype), wq, sw)
        with torch._dynamo.config.patch(**_recompile_patch()):
            return _compiled()(x2.to(out_dtype), wq, sw)
    raise ValueError(f"unknown FP8 GEMM kind {kind!r}")


def _recompile_patch() -> dict:
    cfg = torch._dynamo.config
    key = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
    return {key: 1024}


def cfg_name(cfg, xh: bool = False) -> str:
    return ("w8a16h:" if xh else "w8a16:") + "x".join(str(int(v)) for v in cfg)


def parse_cfg(kind: str):
    if ":" not in kind:
        return None
    return tuple(int(v) for v in kind.split(":", 1)[1].split("x"))


# --------------------------------------------------------------------------------------------------
# choice: measured per (device, N, K, M bucket), kept in memory, or from a table
# --------------------------------------------------------------------------------------------------
CHOICES: dict[tuple, str] = {}  # (device name, cc, N, K, M bucket) -> kind
TIMES: dict[tuple, dict[str, float]] = {}  # same key -> measured ms per candidate


def device_key(device) -> tuple[str, str]:
    dev = torch.device(device)
    major, minor = torch.cuda.get_device_capability(dev)
    return torch.cuda.get_device_name(dev), f"{major}.{minor}"


def candidates(M: int, extra: bool = False) -> list[str]:
    """The kernels measured for an M bucket, the Triton configs on bf16 x and on x's f16 operand alike
    (``extra``: also the configs that won nowhere in their measurement, kept for another device)."""
    b = bucket(M)
    if b > MAX_DECODE_M:
        return [cfg_name(PREFILL_CONFIG), "nt"]
    cfgs = DECODE_CONFIGS + (EXTRA_CONFIGS if extra else ())
    out = [cfg_name(c) for c in cfgs if fits(c, b)] + ["nt", "swap"]
    out += [cfg_name(c, xh=True) for c in cfgs if fits(c, b) and (len(c) < 5 or c[4] != 2)]  # x's f16 operand
    if b <= COMPILED_MAX_M:
        out.append("compiled")
    return out


def load_table(path: str | Path, into: dict | None = None) -> int:
    """Add the measured choices of ``path`` (``{"device", "cc", "cells": {"N,K,bucket": kind}}``, as
    written by ``benchmarks/linear_bench.py``) to :data:`CHOICES` (or ``into``: the dense BF16 layers' choices,
    :mod:`spense.runtime.dense`); returns the number of cells."""
    d = json.loads(Path(path).read_text())
    into = CHOICES if into is None else into
    n = 0
    for key, kind in d.get("cells", {}).items():
        N, K, b = (int(v) for v in key.split(","))
        into[(d["device"], d["cc"], N, K, b)] = kind
        n += 1
    return n


PACKAGED_TABLE = Path(__file__).with_name("fp8_table.json")
_LOADED: set[Path] = set()  # the packaged tables read so far


def load_packaged_once(path: Path, into: dict) -> None:
    """Load a measured table shipped with the runtime (``fp8_table.json`` into :data:`CHOICES`, or the dense
    layers' ``dense_table.json``) into ``into`` the first time it is asked for, if present."""
    if path not in _LOADED:
        _LOADED.add(path)
        if path.is_file():
            load_table(path, into=into)


def sk_layout(wq: torch.Tensor, sw: torch.Tensor):
    """The kernel layout of the ``sk`` kind for this weight, or None where that kernel does not serve it
    (not sm_90, K not a multiple of 64); makes the stream-K workspace too (outside any capture)."""
    if not wq.is_cuda or torch.cuda.get_device_capability(wq.device) != (9, 0) or wq.shape[1] % 64:
        return None
    kw = wgsp.dense_fp8_kernel_weights(wq, sw)
    if not wgsp.wgsp_layer_applies(kw, wq.shape[1], decode=True) or wgsp.sk_workspace(wq.device) is None:
        return None
    return kw


def measure(N: int, K: int, M: int, device, kinds=None, min_bytes: float = 192e6,
            out_dtype: torch.dtype = torch.bfloat16, weight: torch.Tensor | None = None,
            scale: torch.Tensor | None = None) -> dict[str, float]:
    """ms per call of each kind at this shape (e4m3 weights rotated over copies >= min_bytes, past L2); ``sk``
    among the default kinds where it serves M (:func:`sk_layout`).  ``weight``, ``scale``: the layer's own e4m3
    (N, K) weight and its (N,) scales, timed as one of the copies so that only the rest are made (none for a weight
    of ``min_bytes``); the others random, each made from bfloat16 normals (3 bytes an element while it is made)."""
    ncop = max(1, min(8, math.ceil(min_bytes / (N * K))))
    own = [weight.detach()] if own_weight(weight, N, K, device, FP8_DTYPE) else []
    ws = own + [torch.randn(N, K, device=device, dtype=torch.bfloat16).mul_(64).to(FP8_DTYPE)
                for _ in range(ncop - len(own))]
    sw = (scale.detach().float().contiguous() if own and scale is not None and scale.numel() == N
          else torch.rand(N, device=device) + 0.5)
    x = torch.randn(M, K, device=device, dtype=out_dtype)
    kinds = list(kinds or candidates(M) + (["sk"] if M <= SK_MAX_M else []))
    if not scaled_mm_fits(ws[0]):  # the W8A8 kinds would only run the weight-only kernel
        kinds = [k for k in kinds if k not in ("nt", "swap")]
    kws = [sk_layout(w, sw) for w in ws] if "sk" in kinds else []
    if "sk" in kinds and None in kws:
        kinds.remove("sk")
    xh = f16_operand(x.to(torch.bfloat16))  # x's f16 operand, made beforehand as the engine fuses it
    times = {}
    for kind in kinds:
        ks = kws if kind == "sk" else [None] * len(ws)
        try:
            times[kind] = time_graph([lambda w=w, k=k: run_kind(kind, x, w, sw, out_dtype, kw=k, xh=xh)
                                      for w, k in zip(ws, ks)])
        except Exception as e:  # pragma: no cover - depends on the torch/cuBLAS build
            warnings.warn(f"FP8 GEMM {kind!r} unavailable for {N}x{K}, M={M}: {str(e)[:200]}", RuntimeWarning,
                          stacklevel=2)
    del ws, kws
    return times


def default_kind(N: int, K: int, M: int) -> str:
    """The kernel used where none can be measured (inside a capture or a trace): what wins on the H200."""
    return cfg_name(default_config(M, N, K)) if M <= 16 else "nt"


def choose(N: int, K: int, M: int, device, weight: torch.Tensor | None = None,
           scale: torch.Tensor | None = None) -> str:
    """The kernel for this shape and M bucket (measured once per device, see the module doc); ``weight`` and
    ``scale`` as :func:`measure` takes them."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return "reference"
    key = (*device_key(dev), N, K, bucket(M))
    kind = CHOICES.get(key)
    if kind is None:
        load_packaged_once(PACKAGED_TABLE, CHOICES)
        kind = CHOICES.get(key)
    if kind is not None:
        return kind
    if torch.cuda.is_current_stream_capturing() or torch.compiler.is_compiling():
        return default_kind(N, K, M)
    times = measure(N, K, bucket(M), dev, weight=weight, scale=scale)
    TIMES[key] = times
    CHOICES[key] = min(times, key=times.get) if times else "nt"
    return CHOICES[key]


# --------------------------------------------------------------------------------------------------
# module
# --------------------------------------------------------------------------------------------------
class Fp8Linear(nn.Module):
    """Dense ``nn.Linear`` replacement with an e4m3 weight and per-output-channel scales.

    ``kernel``: ``"auto"`` (measured fastest per M bucket, see the module doc) or one kind
    (``"w8a16"``, ``"w8a16:32x256x2x4"``, ``"nt"``, ``"swap"``, ``"compiled"``, ``"sk"``, ``"reference"``).
    Where the kind is ``sk`` the layer also holds the weight's kernel layout (``_sk``, made on first use
    outside a trace or capture, e.g. by :meth:`tune`); where that kernel cannot serve (another GPU, M > 64)
    the layer takes :func:`default_kind`.
    """

    def __init__(self, weight_fp8: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor | None = None,
                 out_dtype: torch.dtype = torch.bfloat16, kernel: str = "auto", name: str = ""):
        super().__init__()
        check_fp8_weights(weight_fp8, scale, name or "Fp8Linear")
        self.out_features, self.in_features = weight_fp8.shape
        self.register_buffer("weight", weight_fp8.contiguous())
        self.register_buffer("scale", scale.float().contiguous())
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(out_dtype).clone(),
                                                           requires_grad=False)
        self.out_dtype = out_dtype
        self.kernel = kernel
        self.name = name
        self.choice: dict[int, str] = {}  # M bucket -> kind (auto), filled on first use or by tune()
        self._sk = None  # the kernel layout of the sk kind (wgsp.dense_fp8_kernel_weights), once a bucket takes it
        self._sk_tried = False

    @classmethod
    def from_linear(cls, lin: nn.Linear, out_dtype: torch.dtype | None = None, kernel: str = "auto",
                    name: str = "") -> "Fp8Linear":
        wq, s = quantize_weight(lin.weight)
        dt = out_dtype or (lin.weight.dtype if lin.weight.dtype in (torch.bfloat16, torch.float16)
                           else torch.bfloat16)
        return cls(wq, s, lin.bias, out_dtype=dt, kernel=kernel, name=name)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=e4m3, kernel={self.kernel}"

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.weight.float() * self.scale[:, None]).to(dtype)

    def kind_for(self, M: int) -> str:
        if self.weight.device.type != "cuda":
            return "reference"
        if self.kernel != "auto":
            kind = self.kernel
        else:
            b = bucket(M)
            if b not in self.choice:
                if torch.compiler.is_compiling():  # a bucket that tune() left out: no device query in a trace
                    return default_kind(self.out_features, self.in_features, M)
                self.choice[b] = choose(self.out_features, self.in_features, M, self.weight.device,
                                       weight=self.weight, scale=self.scale)
            kind = self.choice[b]
        return kind if kind != "sk" or self._sk_ready(M) else default_kind(self.out_features, self.in_features, M)

    def _apply(self, fn, recurse=True):
        self._sk, self._sk_tried = None, False  # moved (.to, .cuda): the kernel layout is made again where needed
        return super()._apply(fn, recurse)

    def _sk_ready(self, M: int) -> bool:
        """Whether the sk kind serves M tokens here: M <= 64 and the kernel layout made (now, unless inside a
        trace or a capture, where nothing is made)."""
        if M > SK_MAX_M:
            return False
        if self._sk is None and not self._sk_tried:
            if torch.compiler.is_compiling() or torch.cuda.is_current_stream_capturing():
                return False
            self._sk_tried = True
            self._sk = sk_layout(self.weight, self.scale)
        return self._sk is not None

    def tune(self, ms=(1, 2, 4, 8, 16, 32, 64, 2048)) -> dict[int, str]:
        """Fix the kernel of each M bucket now (measures unmeasured shapes; call before capture/compile), and make
        the one-launch split-K's tile counters of the device now, outside any capture (:func:`tile_counters`)."""
        for M in ms:
            self.kind_for(M)
        if self.weight.is_cuda and not torch.cuda.is_current_stream_capturing():
            tile_counters(self.weight.device)
        return dict(self.choice)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        kind = self.kind_for(x2.shape[0])
        if kind == "reference":
            y = F.linear(x2.float(), self.dequantized_weight()).to(self.out_dtype)
        else:
            y = run_kind(kind, x2, self.weight, self.scale, self.out_dtype, kw=self._sk)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype).reshape(*lead, self.out_features)
