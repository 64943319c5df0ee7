"""The x operands of the mma.sp kernel (``csrc/spense_mmasp_common.cuh``) and their switches: x's B-fragment
order (:func:`x_fragments`), x permuted within its 32-column chunks (:func:`x_perm`), x's f16 operand for e4m3
weights (:func:`f16_operand`), and when the engine builds each (read-once environment switches).  Pure tensor
ops: torch.compile fuses them into the op that produces x."""

from __future__ import annotations

import functools
import os

import torch

from spense.errors import DeviceError, InputError
from spense.runtime.shapes import bucket, pad_to


def _env_int(name: str, default: int, lo: int, hi: int | None = None) -> int:
    """The integer switch ``name`` (``default`` where unset), refused in one line outside lo..hi (hi None:
    no upper bound)."""
    v = os.environ.get(name, str(default))
    span = f"{lo}..{hi}" if hi is not None else f">= {lo}"
    try:
        n = int(v)
    except ValueError:
        raise DeviceError(f"{name} must be an integer {span}, got {v!r}") from None
    if n < lo or (hi is not None and n > hi):
        raise DeviceError(f"{name} must be {'in ' if hi is not None else ''}{span}, got {n}")
    return n


def env_flag(name: str, default: bool) -> bool:
    """The on/off switch ``name``: ``"1"`` on, ``"0"`` off, ``default`` where unset; anything else refused in one
    line (an :class:`~spense.errors.InputError`)."""
    v = os.environ.get(name, "1" if default else "0")
    if v not in ("0", "1"):
        raise InputError(f"{name}={v!r}: give 0 or 1")
    return v == "1"


def read_once(fn):
    """``fn()``, a switch read from the environment, computed at the first call and then kept (``.cache_clear()``
    forgets it, for tests), as ``functools.lru_cache`` would keep it. A plain function over a dict instead, so that
    torch.compile traces a call of it inside a compiled step without warning of an lru_cache wrapper, and reads the
    kept value rather than the environment."""
    memo: dict = {}

    @functools.wraps(fn)
    def once():
        if "v" not in memo:
            memo["v"] = fn()
        return memo["v"]

    once.cache_clear = memo.clear
    return once


@read_once
def xfrag_min_m() -> int:
    """Smallest M at which :func:`mmasp_forward`, given no fragments, builds them itself:
    ``SPENSE_MMASP_XFRAG_MIN_M`` (read once; default 65 = never).  The kernel reading fragments is
    1.16-2.29x faster on every Qwen3 shape at M = 1, 8, 16 on the H200 (benchmarks/results/
    mmasp_bulk_2026-11-30), but building them here costs three small kernels per call, which cost
    more than that in the engine's CUDA-graphed step (e2e v7): the fast way is the compiled engine,
    where :meth:`SpenseLinear.plan` has torch.compile fuse them into the op that produces x."""
    return _env_int("SPENSE_MMASP_XFRAG_MIN_M", 65, 1, 65)


@read_once
def xfrag_plan_min_m() -> int:
    """Smallest planned M for which :meth:`SpenseLinear.plan` has ``forward`` build x's fragments (for
    that M's whole bucket): ``SPENSE_MMASP_XFRAG_PLAN_MIN_M`` (read once; default 1 = every planned M).
    At 2 a decode step at M = 1 runs the register kernel on x itself, whose x ring covers x direct at
    NT = 1 since e2e v13, and loses the fragment builders (107 small kernels, 0.12 ms, in the 8B step
    of e2e v12): run ``benchmarks/run_e2e.sh``'s stage ``spense_xd1`` to measure it."""
    return _env_int("SPENSE_MMASP_XFRAG_PLAN_MIN_M", 1, 1, 65)


F16_X_SCALE = 2.0 ** -8  # x's factor into f16 for the e4m3 kernels' f16 path (|x| up to 2^24 stays finite)


def f16_operand(x2: torch.Tensor) -> torch.Tensor:
    """x2 (bf16) as the f16 operand of the e4m3 kernels' f16 path (:func:`f16_x`, and the stream-K form's
    variant bit 2048, :func:`spense.runtime.wgsp.wgsd_f16_x`): ``x2 * 2^-8`` rounded to f16: exact for |x| in
    [2^-6, 2^24) (f16 keeps more mantissa bits than bf16), an absolute error under 2^-17 below; |x| >= 2^24
    overflows to inf (no linear layer input of a working bf16 model comes near)."""
    return (x2 * F16_X_SCALE).to(torch.float16)


@read_once
def f16_x() -> bool:
    """Whether the register kernel takes x in f16 for e4m3 weights at M <= 16 (``SPENSE_MMASP_F16``, read once;
    0 or 1, default 1): :meth:`SpenseLinear.forward` then builds x_perm or the fragments from
    :func:`f16_operand`, and the kernel widens each e4m3 pair to f16 by one cvt (instead of five instructions
    to bf16) and runs its MMAs in f16 (csrc/spense_mmasp_common.cuh: FP8 == 2), the scale times 2^8 at the
    end.  Exact as the bf16 path wherever no |x| is below 2^-6 (every product is exact either way).
    Measured on the H200 (benchmarks/results/wgsd_2026-12-01, ai and aj): the 8B FP8 step 5.0 % / 5.6 % faster
    at B = 1 / 8 (3.054 -> 2.900 ms, 3.467 -> 3.272 ms)."""
    return bool(_env_int("SPENSE_MMASP_F16", 1, 0, 1))


F16_MAX_M = 16  # the register kernel's f16 path: M <= 16 (x_perm: M <= 8), RT 1 or 2 (csrc/spense_mmasp.cu)


@read_once
def operand_only() -> bool:
    """Whether :meth:`SpenseLinear.forward` passes the op only x's shape beside a planned operand that the mma.sp
    kernel reads instead of x (x_perm of x's f16 operand, or fragments): ``SPENSE_OPERAND_ONLY`` (read once; 0 or
    1, default 1).  Passed x itself, the op makes torch.compile write x as well as its operand, and where nothing
    else reads x that is a kernel of its own: in the profile of the 8B FP8 step at B = 1
    (benchmarks/results/wgsd_2026-12-02, ap) the SiLU product is written twice, 36 more launches than in the
    FP8 dense step; an uninitialised tensor of x's shape carries the M, K, dtype and device that the op reads.
    Measured on the H200 in one run (same folder, ba): the 8B FP8 step 2.860 -> 2.785 ms at B = 1 and 3.319 ->
    3.260 ms at B = 8."""
    return bool(_env_int("SPENSE_OPERAND_ONLY", 1, 0, 1))


def x_fragments(x2: torch.Tensor) -> torch.Tensor:
    """``x2`` (``(M, K)`` bf16, M <= 64) in the kernels' B-fragment order, one 16-byte load per lane:

        xf[c, n, g * 4 + t, i, e] = x[8 n + g, 32 c + 8 i + 2 t + e]     (0 past M or K)

    ``c`` = 32-column chunk (K padded to a multiple of 64), ``n`` = 8-token tile (``NT`` of them:
    1, 2, 4 or 8 by M), lane ``(g, t)``; ``(i, e)`` are the four bf16 pairs of an ``mma.sp.m16n8k32``
    B fragment (an ``m16n8k16`` one is half of it)."""
    M, K = x2.shape
    nt = max(1, bucket(M) // 8)  # the kernel's NT: 1, 2, 4, 8 for M <= 8, 16, 32, 64
    Kp = pad_to(K, 64)
    xp = torch.nn.functional.pad(x2, (0, Kp - K, 0, 8 * nt - M))
    return xp.view(nt, 8, Kp // 32, 4, 4, 2).permute(2, 0, 1, 4, 3, 5).contiguous()


@read_once
def x_perm_max_m() -> int:
    """The largest M at which :meth:`SpenseLinear.plan` has ``forward`` permute x into :func:`x_perm`
    instead of building its fragments: ``SPENSE_MMASP_XPERM`` (read once; 0: never, at most 8; default
    1).  x_perm keeps x's shape, so that torch.compile can write it from the kernel producing x (the
    fragments pad the tokens to 8 and took 107 separate kernels, 0.12 ms, of the 8B step in e2e v12).
    Measured (docs/e2e.md): at M <= 8 the kernel reading x_perm ran 1.04-1.12x slower than through
    fragments at M = 8 (harness) and the 8B step lost 5.5 % at B = 8 (v15); at M = 1 it runs as fast and
    the step gained 1.4 % (v15) and 2.0 % (v16, another lease), hence M = 1 alone by default."""
    v = os.environ.get("SPENSE_MMASP_XPERM", "1")
    try:
        return max(0, min(8, int(v)))
    except ValueError:
        raise ValueError(f"SPENSE_MMASP_XPERM={v!r}: give the largest M for x_perm (0 to 8)") from None


def x_perm(x2: torch.Tensor) -> torch.Tensor:
    """``x2`` (``(M, K)``, K a multiple of 64) with each 32-column chunk in the kernels' B-fragment order:

        x_perm[m, 32 c + 8 t + 2 i + e] = x[m, 32 c + 8 i + 2 t + e]     (i, t < 4; e < 2)

    so that lane ``(g, t)`` of the register kernel finds its fragment of chunk ``c`` (the same 16 bytes
    as in :func:`x_fragments`) contiguous in its token's row.  It swaps ``i`` and ``t``, so it is its own
    inverse."""
    M, K = x2.shape
    if K % 64:
        raise InputError(f"x_perm needs K a multiple of 64, got {K}")
    return x2.reshape(M, K // 32, 4, 4, 2).transpose(2, 3).reshape(M, K)


def gathered_fragments(x2: torch.Tensor, xperm: torch.Tensor | None) -> torch.Tensor:
    """:func:`x_fragments` of ``x2`` after the kernel layout's column gather ``xperm`` (if any): the
    ``xf`` that :func:`mmasp_forward` takes."""
    return x_fragments(x2 if xperm is None else x2.index_select(1, xperm))
