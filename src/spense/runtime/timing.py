"""The one CUDA-graph timer of the runtime (kernel choice on first use, autotune, benchmarks)."""

from __future__ import annotations

import contextlib

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


def time_graph(fns, reps: int = 4, replays: int = 5, warmup: int = 1) -> float:
    """Median ms per call of ``fns`` (each called ``reps`` times per replay) inside one CUDA graph, over
    ``replays`` replays, after ``warmup`` eager calls of each on a side stream; no cuBLAS workspace outlives it
    (:func:`fresh_blas_workspaces`)."""
    with fresh_blas_workspaces():
        return _time_graph(fns, reps, replays, warmup)


def _time_graph(fns, reps: int, replays: int, warmup: int) -> float:
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(warmup):
            for f in fns:
                f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            for f in fns:
                f()
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
