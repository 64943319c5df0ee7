"""L2 prefetch of the next layer's weights while the small kernels between two GEMMs run.

At decode sizes a step alternates memory-bound GEMMs with short latency-bound kernels (norms, RoPE,
attention, the x-fragment builders) during which HBM sits idle: in the profiled 8B step about 28 µs
per layer.  ``spense::l2_prefetch(dep, key)`` issues ``cp.async.bulk.prefetch.L2`` for the first bytes
of the weights registered under ``key`` and returns at once: the copy engines go on filling L2 while
the kernels after it run, and the next GEMM then finds those bytes in L2.  ``dep`` (the previous
GEMM's output) only orders the op after the GEMM that frees L2 for it.

The weights are looked up by an integer key (:func:`register`), not passed as tensors, so that
torch.compile lifts no weight as a graph input.  The op returns nothing; it is declared side-effecting
so that torch.compile keeps it.  On CPU (and without Triton) it does nothing and counts its calls in
``CALLS`` (the tests read it).

A tensor's share of the budget ``b`` bytes is proportional to its size: ``t_i = min(n_i, b n_i / Σ n)``,
rounded down to 16 bytes (the instruction's unit); every ``CHUNK`` bytes are one instruction.
"""

from __future__ import annotations

import itertools
import weakref

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU installs without Triton
    triton = None

CHUNK = 16384  # bytes per prefetch instruction
LANES = 32  # instructions per program (one warp)
MAX_TENSORS = 4
_PLANS: dict[int, list[tuple[weakref.ref, int]]] = {}  # weak: a plan never keeps a model's weights alive
_KEYS = itertools.count(1)
CALLS = [0]

if triton is not None:

    @triton.jit
    def _l2_prefetch_kernel(p0, p1, p2, p3, n0, n1, n2, n3, CHUNK: tl.constexpr, LANES: tl.constexpr):
        """Program ``i`` covers bytes ``[i L C, (i+1) L C)`` of the concatenation of the four ranges
        (``L`` lanes of ``C`` bytes); each lane prefetches its chunk of the range it falls in."""
        off = (tl.program_id(0) * LANES + tl.arange(0, LANES)).to(tl.int64) * CHUNK
        c1 = n0
        c2 = c1 + n1
        c3 = c2 + n2
        c4 = c3 + n3
        base = tl.where(off < c1, p0.to(tl.pointer_type(tl.int8)) + off,
                        tl.where(off < c2, p1.to(tl.pointer_type(tl.int8)) + (off - c1),
                                 tl.where(off < c3, p2.to(tl.pointer_type(tl.int8)) + (off - c2),
                                          p3.to(tl.pointer_type(tl.int8)) + (off - c3))))
        end = tl.where(off < c1, c1, tl.where(off < c2, c2, tl.where(off < c3, c3, c4)))
        size = tl.minimum(end - off, CHUNK).to(tl.int32)
        size = tl.where(off < c4, size, 0)
        tl.inline_asm_elementwise(
            "{ .reg .pred p; setp.gt.s32 p, $2, 0; @p cp.async.bulk.prefetch.L2.global [$1], $2; mov.u32 $0, 0; }",
            "=r,l,r", [base, size], dtype=tl.int32, is_pure=False, pack=1)


def shares(sizes: list[int], budget: int) -> list[int]:
    """Bytes to prefetch of each tensor: ``min(n_i, budget n_i / Σ n)`` rounded down to 16."""
    total = sum(sizes)
    if total <= 0 or budget <= 0:
        return [0] * len(sizes)
    f = min(1.0, budget / total)
    return [int(n * f) // 16 * 16 for n in sizes]


def register(tensors: list[torch.Tensor], budget: int) -> int:
    """Key of a prefetch plan: the first ``shares(...)`` bytes of each of ``tensors`` (of the
    :data:`MAX_TENSORS` largest, each contiguous)."""
    ts = [t for t in tensors if t is not None and t.numel() > 0]
    big = sorted(range(len(ts)), key=lambda i: -ts[i].numel() * ts[i].element_size())[:MAX_TENSORS]
    ts = [ts[i] for i in sorted(big)]
    for t in ts:
        if not t.is_contiguous():
            raise ValueError("l2_prefetch: tensors must be contiguous")
    nb = shares([t.numel() * t.element_size() for t in ts], budget)
    key = next(_KEYS)
    _PLANS[key] = [(weakref.ref(t), n) for t, n in zip(ts, nb) if n > 0]
    return key


def planned_bytes(key: int) -> int:
    return sum(n for _, n in _PLANS.get(key, ()))


def launch(key: int) -> None:
    """Issue the prefetches of plan ``key`` (CUDA tensors)."""
    plan = [(r(), n) for r, n in _PLANS.get(key, ())]
    plan = [(t, n) for t, n in plan if t is not None]
    if not plan:
        return
    ptrs = [t for t, _ in plan] + [plan[0][0]] * (MAX_TENSORS - len(plan))
    sizes = [n for _, n in plan] + [0] * (MAX_TENSORS - len(plan))
    grid = (triton.cdiv(sum(sizes), CHUNK * LANES),)
    _l2_prefetch_kernel[grid](*ptrs, *sizes, CHUNK=CHUNK, LANES=LANES, num_warps=1)


@torch.library.custom_op("spense::l2_prefetch", mutates_args=())
def l2_prefetch(dep: torch.Tensor, key: int) -> None:
    """Prefetch plan ``key`` into L2 after ``dep`` is written (CUDA); nothing elsewhere."""
    CALLS[0] += 1
    if dep.is_cuda and triton is not None:
        launch(key)


@l2_prefetch.register_fake
def _(dep, key):
    return None


# no output, nothing mutated: without this torch.compile drops the call as dead code
torch.fx.node.has_side_effect(torch.ops.spense.l2_prefetch)
torch.fx.node.has_side_effect(torch.ops.spense.l2_prefetch.default)
