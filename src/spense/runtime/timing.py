"""The runtime's CUDA-graph capture (the engine's plain graphs) and its one timer (kernel choice on first use,
autotune, benchmarks)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch


@contextlib.contextmanager
def fresh_blas_workspaces():
    """Drop torch's cuBLAS workspaces on entry and on exit, as Inductor's graph trees do around a capture.

    torch keeps one workspace (32 MiB on Hopper) per (cuBLAS handle, stream) for the life of the process. Each side
    stream that warms up or captures a graph adds one: choosing the dense kernels of Gemma-3-270M's shape left 21 of
    them (705 MB) held (results wgsd_2026-12-07 et). A workspace allocated inside the block is freed when it ends; a
    graph captured inside keeps its address as scratch, like any intermediate of its pool. Nothing on a build
    without CUDA."""
    clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: None)
    clear()
    try:
        yield
    finally:
        clear()


def capture(body: Callable, warm: Callable, pool=None) -> tuple[torch.cuda.CUDAGraph, Any]:
    """``warm()`` on a side stream, then ``body()`` captured in one CUDA graph (in ``pool`` if given), with the
    cuBLAS workspaces dropped around both (:func:`fresh_blas_workspaces`): the graph and what ``body`` returned."""
    with fresh_blas_workspaces():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            warm()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, pool=pool):  # synchronizes the device first
            out = body()
    return g, out


def time_graph(fns, reps: int = 4, replays: int = 5, warmup: int = 1) -> float:
    """Median ms per call of ``fns`` (each called ``reps`` times per replay) inside one CUDA graph, over
    ``replays`` replays, after ``warmup`` eager calls of each on a side stream (:func:`capture`)."""

    def calls(n: int) -> None:
        for _ in range(n):
            for f in fns:
                f()

    g, _ = capture(lambda: calls(reps), lambda: calls(warmup))
    g.replay()
    torch.cuda.synchronize()
    ts = []
    for _ in range(replays):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / (reps * len(fns)))
    del g
    return sorted(ts)[len(ts) // 2]
