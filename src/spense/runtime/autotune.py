"""``auto`` backend: measured choice per (layer shape, M bucket), with a built-in default table."""

from __future__ import annotations

import torch

# Default choice when a layer was not tuned: the fastest backend measured by
# benchmarks/linear_bench.py on an H100 (auto_table.json: "N,K,dense_ratio,M" -> backend), looked
# up at the nearest measured dense ratio and M; shapes never measured use a conservative rule
# (mmasp for M <= 4, dense otherwise) - call SpenseLinear.tune() to measure them.
_TABLE = None


def _table():
    global _TABLE
    if _TABLE is None:
        import json
        from pathlib import Path

        try:
            _TABLE = json.loads((Path(__file__).parent / "auto_table.json").read_text())["choice"]
        except Exception:  # pragma: no cover
            _TABLE = {}
    return _TABLE


def default_choice(layer, M: int) -> str:
    if layer.scale is not None:
        return "triton" if M <= 64 else "dense"
    if layer.values.dtype != torch.bfloat16:
        return "dense"
    N, K = layer.out_features, layer.in_features
    r = layer.layout.dense_ratio
    keys = [k.split(",") for k in _table() if k.startswith(f"{N},{K},")]
    if keys:
        ratios = sorted({float(k[2]) for k in keys})
        rr = min(ratios, key=lambda v: abs(v - r))
        ms = sorted({int(k[3]) for k in keys if float(k[2]) == rr})
        mm = min(ms, key=lambda v: abs(v - M) / max(v, M))
        c = _table()[f"{N},{K},{rr},{mm}"] if f"{N},{K},{rr},{mm}" in _table() else _table()[f"{N},{K},{int(rr) if rr == int(rr) else rr},{mm}"]
        if c in ("mmasp", "triton") and M > 64:
            c = "dense"
        return c
    return "mmasp" if M <= 4 else "dense"


def time_graph(fn, reps: int = 20, warmup: int = 3) -> float:
    """Median ms of ``fn()`` captured in a CUDA graph (``reps`` calls per replay)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / reps)
    times.sort()
    return times[len(times) // 2]


def tune_layer(layer, ms, candidates=None, reps: int = 20) -> dict:
    from spense.runtime.linear import DECODE_MAX_M, _bucket

    dev = layer.values.device
    if dev.type != "cuda":
        return {}
    out = {}
    for M in ms:
        b = _bucket(M)
        x = torch.randn(M, layer.in_features, device=dev, dtype=torch.bfloat16)
        cands = list(candidates or ["dense", "cusparselt", "mmasp", "triton"])
        if M > DECODE_MAX_M:
            cands = [c for c in cands if c not in ("mmasp", "triton")]
        if layer.scale is not None:
            cands = [c for c in cands if c not in ("mmasp", "cusparselt")]
        res = {}
        for c in cands:
            try:
                res[c] = time_graph(lambda: layer.run_backend(c, x), reps=reps)
            except Exception as e:  # a backend that cannot run this shape is skipped
                res[c] = float("inf")
        best = min(res, key=res.get)
        layer.choice[b] = best
        if best == "dense":
            layer.fallbacks[b] = f"dense fastest: {res}"
        out[M] = res
    return out
