"""The one CUDA-graph timer of the runtime (kernel choice on first use, autotune, benchmarks)."""

from __future__ import annotations

import torch


def time_graph(fns, reps: int = 4, replays: int = 5, warmup: int = 1) -> float:
    """Median ms per call of ``fns`` (each called ``reps`` times per replay) inside one CUDA graph, over
    ``replays`` replays, after ``warmup`` eager calls of each on a side stream."""
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
