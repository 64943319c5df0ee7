"""CUDA graphs for the OBS sweep's lazy batches (:func:`spense.solver.obs_sweep`).

One lazy batch of an N:M sweep is ~60 small tensor operations per mask window (mask choice, four
rank-1 updates, one rank-``group`` update), ~2,000 per 128-column batch, each far too small to keep a
GPU busy: on a Qwen3-8B block the sweep was launch-bound (GPU ~20 % busy, 20 s per block on an H200).
The batch's work depends only on its shapes and on the mask rule, so it is captured once per
``(device, N, width, dtype, mask rule)`` into a CUDA graph with static input buffers and replayed for
every later batch of that shape, in every linear of the model.  A replay runs exactly the captured
kernels on the copied inputs, so the results are bit-identical to the eager sweep.

Used only on CUDA, for the default N:M mask rule (``mask_key`` names it; unstructured batches stay
eager: their graph failed the bit-identity test on the H200), and never inside another
capture; if a capture fails the shape falls back to the eager sweep for the rest of the process.
``SPENSE_SWEEP_GRAPHS=0`` turns graphs off.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable, Hashable

import torch

BatchFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (W1 in place, U1) -> E
MAX_GRAPHS = 16  # distinct batch shapes kept per process (a model has a handful)
MIN_BATCHES = 8  # a linear with fewer full batches replays a graph only if one is cached already
# (capturing costs about three eager batches: warm-up, capture, and the allocations of both)


class GraphedBatch:
    """``fn(W1, U1)`` captured for one shape; ``__call__`` returns the *static* ``(W1, E)`` buffers,
    valid until the next call of the same graph."""

    def __init__(self, fn: BatchFn, n_rows: int, width: int, dtype: torch.dtype, device: torch.device):
        self.W1 = torch.zeros(n_rows, width, dtype=dtype, device=device)
        self.U1 = torch.eye(width, dtype=dtype, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up outside the capture (library handles, allocator)
            fn(self.W1.clone(), self.U1)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.E = fn(self.W1, self.U1)

    def __call__(self, W1: torch.Tensor, U1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.W1.copy_(W1)
        self.U1.copy_(U1)
        self.graph.replay()
        return self.W1, self.E


_GRAPHS: OrderedDict[Hashable, GraphedBatch | None] = OrderedDict()


def enabled(device: torch.device) -> bool:
    return (device.type == "cuda" and os.environ.get("SPENSE_SWEEP_GRAPHS", "1") != "0"
            and not torch.cuda.is_current_stream_capturing())


def batch_runner(fn: BatchFn, W1: torch.Tensor, mask_key: Hashable | None,
                 create: bool = True) -> GraphedBatch | None:
    """The graph for ``W1``'s shape and ``mask_key``, or None: eager.  A shape seen for the first
    time is captured only with ``create`` (the caller has enough batches of it to pay for that)."""
    if mask_key is None or not enabled(W1.device):
        return None
    key = (str(W1.device), tuple(W1.shape), W1.dtype, mask_key)
    if key in _GRAPHS:
        _GRAPHS.move_to_end(key)
        return _GRAPHS[key]
    if not create:
        return None
    try:
        g: GraphedBatch | None = GraphedBatch(fn, W1.shape[0], W1.shape[1], W1.dtype, W1.device)
    except RuntimeError:  # e.g. an op that cannot be captured: this shape stays eager
        torch.cuda.synchronize(W1.device)
        g = None
    _GRAPHS[key] = g
    while len(_GRAPHS) > MAX_GRAPHS:
        _GRAPHS.popitem(last=False)
    return g


def clear() -> None:
    """Drop every captured graph (and its memory pool)."""
    _GRAPHS.clear()
