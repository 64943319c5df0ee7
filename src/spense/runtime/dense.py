"""Dense BF16 linears at decode: cuBLAS, or our weight-streaming Triton kernel where that is faster.

``y = x W^T (+ b)`` for a plain bf16 / f16 weight ``W`` ``(N, K)``, by one of two kinds, chosen per (device, N, K,
M bucket) as the FP8 layer's kernel is (:mod:`spense.runtime.fp8`):

* ``cublas``: ``F.linear``;
* ``stream:<BN>x<BK>x<SK>x<warps>x0x<stages>x<serial>``: the FP8 dense baseline's Triton kernel
  (:func:`spense.runtime.fp8_dense.w8a16_kernel`) on the weight as it is, with no scales (``SCALED`` off): each
  program streams ``BLOCK_N`` weight rows over one of ``SK`` slices of K, fp32 accumulation, the slices summed in
  order in the same launch (``serial`` 1).  Op ``spense::dense_stream_mm``; on CPU the same product in float32.

Why: at decode a linear is a weight stream, and cuBLAS leaves bandwidth behind on some shapes.  On the H200
(``benchmarks/bf16_dense_probe.py``, results ``wgsd_2026-12-04/w_*``) the kernel took 1.04-1.18x less time than
cuBLAS at M = 1 on six of the eight Qwen3-8B / 32B shapes (8B.down 31.1 -> 27.0 us, 3.73 TB/s) and 1.06x on the
lm_heads; on the qkv shapes the two are within about 1 %, where cuBLAS is kept (:data:`MARGIN`).  So a dense model
is measured against the better of the two per shape: the dense baseline a user gets from this runtime.

The choice comes from the packaged table ``dense_table.json`` (measured on the H200), else is measured once on first
use outside a CUDA-graph capture or a trace (cuBLAS against :data:`STREAM_CONFIGS`, weights rotated past L2;
:func:`fastest`), else (inside one, or with no memory to measure) ``cublas``.  A bias, or a weight whose rows are not
contiguous: ``cublas``.  M above :data:`MAX_STREAM_M` (prefill): ``cublas``.  ``SPENSE_DENSE_STREAM=0``: ``cublas``
everywhere (the engine's dense model before the kernel).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from spense.runtime.fp8 import device_key, load_packaged_once
from spense.runtime.fp8_dense import MAX_DECODE_M, fits, launch_w8a16, tile_counters, triton
from spense.runtime.shapes import bucket, device_index, own_weight
from spense.runtime.timing import time_graph
from spense.runtime.xops import env_flag

MAX_STREAM_M = MAX_DECODE_M  # decode sizes only; prefill stays on cuBLAS
MARGIN = 1.01  # the streaming kernel is taken where it beats cuBLAS by more than 1 % (about a measurement's spread)
# (BLOCK_N, BLOCK_K, SPLIT_K, num_warps, MODE, num_stages, serial): each the fastest on some Qwen3 shape at M = 1, 8
# or 16 of 90 configs swept in results wgsd_2026-12-04/w (bf16_dense_probe.py)
STREAM_CONFIGS: tuple[tuple[int, ...], ...] = (
    (64, 128, 4, 4, 0, 3, 1), (32, 128, 4, 4, 0, 3, 1), (32, 128, 2, 4, 0, 5, 1), (64, 128, 2, 8, 0, 5, 1),
    (64, 128, 1, 4, 0, 3, 0), (32, 128, 1, 4, 0, 3, 0), (32, 128, 1, 4, 0, 5, 0), (32, 256, 1, 4, 0, 3, 0),
    (64, 256, 1, 4, 0, 5, 0),
)
CHOICES: dict[tuple, str] = {}  # (device name, cc, N, K, M bucket) -> kind
_KINDS: dict[tuple, str] = {}  # (device index, N, K, M bucket) -> kind: what a traced step reads (no device query)
TIMES: dict[tuple, dict[str, float]] = {}  # same key -> measured ms per kind
PACKAGED_TABLE = Path(__file__).with_name("dense_table.json")


_STREAM: list[bool] = []  # SPENSE_DENSE_STREAM, once read (a traced step reads this list, not the environment)


def stream_on() -> bool:
    """``SPENSE_DENSE_STREAM`` (read once; 1, default: the choice above; 0: cuBLAS everywhere)."""
    if not _STREAM:
        _STREAM.append(env_flag("SPENSE_DENSE_STREAM", True))
    return _STREAM[0]


def reset_switch() -> None:
    """Read ``SPENSE_DENSE_STREAM`` again on next use (tests)."""
    _STREAM.clear()


def stream_name(cfg) -> str:
    return "stream:" + "x".join(str(int(v)) for v in cfg)


def parse_stream(kind: str) -> tuple[int, ...]:
    """``"stream:64x128x4x4x0x3x1"`` -> its config tuple (seven elements, as :data:`STREAM_CONFIGS`)."""
    if not kind.startswith("stream:"):
        raise ValueError(f"not a streaming kind: {kind!r}")
    cfg = tuple(int(v) for v in kind[len("stream:"):].split("x"))
    if len(cfg) != 7:
        raise ValueError(f"a streaming kind has seven config elements: {kind!r}")
    return cfg


@torch.library.custom_op("spense::dense_stream_mm", mutates_args=())
def dense_stream_mm(x: torch.Tensor, w: torch.Tensor, block_n: int, block_k: int, split_k: int, num_warps: int,
                    num_stages: int = 0, serial: int = 0) -> torch.Tensor:
    """``y (M, N) = x (M, K) @ w (N, K).T`` by the streaming kernel (module doc), in x's dtype; on CPU in float32."""
    if x.is_cuda and triton is not None:
        return launch_w8a16(x, w, None, (block_n, block_k, split_k, num_warps, 0, num_stages, serial), pdl=0)
    return F.linear(x.float(), w.float()).to(x.dtype)


@dense_stream_mm.register_fake
def _(x, w, block_n, block_k, split_k, num_warps, num_stages=0, serial=0):
    torch._check(x.shape[1] == w.shape[1])
    return x.new_empty(x.shape[0], w.shape[0])


def run_kind(kind: str, x2: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x2 @ w.T`` (no bias) by ``kind``."""
    if kind == "cublas":
        return F.linear(x2, w)
    bn, bk, sk, nw, _, st, serial = parse_stream(kind)
    return dense_stream_mm(x2, w, bn, bk, sk, nw, st, serial)


def candidates(M: int) -> list[str]:
    """The kinds measured for an M bucket: cuBLAS, and the streaming configs whose tiles fit (bf16 weights)."""
    if bucket(M) > MAX_STREAM_M:
        return ["cublas"]
    return ["cublas"] + [stream_name(c) for c in STREAM_CONFIGS if fits(c, bucket(M), w_bytes=2)]


def measure(N: int, K: int, M: int, device, kinds=None, min_bytes: float = 256e6,
            dtype: torch.dtype = torch.bfloat16, weight: torch.Tensor | None = None) -> dict[str, float]:
    """ms per call of each kind at this shape (weights rotated over copies >= ``min_bytes``, past L2: one copy where
    the weight alone is that large); ``{}`` where the copies do not fit in the device's free memory.  ``weight``: the
    layer's own (N, K) weight, one of the copies, so that only the rest are made (none for a weight of
    ``min_bytes``, such as an LM head, which would otherwise add its size to the setup's peak); the others random."""
    ncop = min(8, math.ceil(min_bytes / (N * K * 2)))
    own = [weight.detach()] if own_weight(weight, N, K, device, dtype) else []
    try:
        ws = own + [torch.randn(N, K, device=device, dtype=dtype) for _ in range(ncop - len(own))]
    except torch.cuda.OutOfMemoryError:
        warnings.warn(f"no memory to measure the dense kinds of {N}x{K}: cuBLAS", RuntimeWarning, stacklevel=2)
        return {}
    x = torch.randn(M, K, device=device, dtype=dtype)
    tile_counters(torch.device(device))
    times = {}
    for kind in kinds or candidates(M):
        try:
            times[kind] = time_graph([lambda w=w: run_kind(kind, x, w) for w in ws])
        except Exception as e:  # pragma: no cover - depends on the Triton build and the device
            warnings.warn(f"dense kind {kind!r} unavailable for {N}x{K}, M={M}: {str(e)[:200]}", RuntimeWarning,
                          stacklevel=2)
    del ws
    return times


def choose(N: int, K: int, M: int, device, dtype: torch.dtype = torch.bfloat16,
           weight: torch.Tensor | None = None) -> str:
    """The kind for this shape and M bucket (module doc); ``weight`` as :func:`measure` takes it."""
    dev = torch.device(device)
    if dev.type != "cuda" or bucket(M) > MAX_STREAM_M or triton is None:
        return "cublas"
    key = (*device_key(dev), N, K, bucket(M))
    if key not in CHOICES:
        load_packaged_once(PACKAGED_TABLE, CHOICES)
    if key in CHOICES:
        return CHOICES[key]
    if torch.cuda.is_current_stream_capturing() or torch.compiler.is_compiling():
        return "cublas"
    times = measure(N, K, bucket(M), dev, dtype=dtype, weight=weight)
    TIMES[key] = times
    CHOICES[key] = fastest(times)
    return CHOICES[key]


def fastest(times: dict[str, float]) -> str:
    """The kind of least time, but cuBLAS unless a streaming config beats it by more than :data:`MARGIN`."""
    if not times:
        return "cublas"
    best = min(times, key=times.get)
    return best if "cublas" not in times or times["cublas"] > times[best] * MARGIN else "cublas"


def kind_for(N: int, K: int, M: int, device: torch.device, dtype: torch.dtype = torch.bfloat16,
             weight: torch.Tensor | None = None) -> str:
    """:func:`choose`'s kind, kept per device index; inside a trace only what was kept (else ``cublas``), so that a
    compiled step asks the device nothing: :func:`tune` fixes it beforehand."""
    key = (device_index(device), N, K, bucket(M))
    kind = _KINDS.get(key)
    if kind is None:
        if torch.compiler.is_compiling():
            return "cublas"
        kind = choose(N, K, M, device, dtype, weight)
        if not torch.cuda.is_current_stream_capturing():  # inside a capture only what was kept, not measured
            _KINDS[key] = kind
    return kind


def tune(N: int, K: int, device, ms=(1, 2, 4, 8, 16, 32, 64), dtype: torch.dtype = torch.bfloat16,
         weight: torch.Tensor | None = None) -> dict[int, str]:
    """Fix the kind of each M bucket of ``ms`` for an ``(N, K)`` weight of ``dtype`` now (measuring what the table
    lacks; ``weight``: the layer's own, timed as one of :func:`measure`'s copies), and make the one-launch split-K's
    tile counters: call before any capture or compile.  Nothing for a dtype the kernel does not serve
    (``dense_linear`` runs cuBLAS there)."""
    dev = torch.device(device)
    if dev.type != "cuda" or not stream_on() or dtype not in (torch.bfloat16, torch.float16):
        return {}
    out = {bucket(M): kind_for(N, K, M, dev, dtype, weight) for M in ms}
    if not torch.cuda.is_current_stream_capturing():
        tile_counters(dev)
    return out


def kept_kinds(device, max_m: int = MAX_STREAM_M, shapes=None) -> dict[str, dict[int, dict]]:
    """What each plain weight shape (of ``shapes``, ``(N, K)`` pairs, if given) runs on ``device`` per M bucket up to
    ``max_m``, as kept so far in this process: ``{"N,K": {bucket: {"kind": ..., "measured": bool}}}``, ``measured``
    where the choice was timed here (on first use, :func:`measure`) rather than read from the packaged table, so
    that two processes can differ in it."""
    dev = torch.device(device)
    out: dict[str, dict[int, dict]] = {}
    for (i, N, K, b), kind in sorted(_KINDS.items()):
        if i == device_index(dev) and b <= max_m and (shapes is None or (N, K) in shapes):
            measured = dev.type == "cuda" and (*device_key(dev), N, K, b) in TIMES
            out.setdefault(f"{N},{K}", {})[int(b)] = {"kind": kind, "measured": measured}
    return out


def dense_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, w, b)`` by the kind chosen for ``w``'s shape and x's token count (module doc).  cuBLAS wherever
    the streaming kernel does not apply: not CUDA, ``SPENSE_DENSE_STREAM=0``, x and w of different dtypes or not
    bf16 / f16, a weight whose rows are not contiguous, or a bias (cuBLAS adds it before its one rounding)."""
    if (not x.is_cuda or x.dtype != w.dtype or x.dtype not in (torch.bfloat16, torch.float16) or w.stride(1) != 1
            or b is not None or not stream_on()):
        return F.linear(x, w, b)
    N, K = w.shape
    x2 = x.reshape(-1, K)
    kind = kind_for(N, K, x2.shape[0], x.device, x.dtype, w)
    if kind == "cublas":
        return F.linear(x, w, b)
    return run_kind(kind, x2, w).reshape(*x.shape[:-1], N)
