"""``auto`` backend: measured choice per (layer shape, M bucket), with a built-in default table."""

from __future__ import annotations

import torch

# Default choice when a layer was not tuned: the fastest backend measured by
# benchmarks/linear_bench.py on an H100 (auto_table.json, derived by benchmarks/make_auto_table.py:
# "dtype,axis,N,K,dense_ratio,M" -> backend, plus the measured best mmasp launch config), looked up
# at the nearest measured dense ratio and a measured M chosen by `_measured_m` (conservative between
# measured points); shapes never measured use a conservative rule (mmasp for M <= 8, where the kernel
# runs one 8-token tile, dense otherwise) - call SpenseLinear.tune() to measure them.
_TABLE = None


def _full_table() -> dict:
    global _TABLE
    if _TABLE is None:
        import json
        from pathlib import Path

        try:
            _TABLE = json.loads((Path(__file__).parent / "auto_table.json").read_text())
        except Exception:  # pragma: no cover
            _TABLE = {}
    return _TABLE


def _table() -> dict:
    return _full_table().get("choice", {})


DECODE_TILES_MAX_M = 64  # the mma.sp decode kernel's range (tiles of 8 tokens: 1, 2, 4 or 8 tiles)


def _tiles(M: int) -> int:
    """Token tiles the decode kernel runs for M tokens (its cost steps with this, not with M)."""
    t = 1
    while 8 * t < M:
        t *= 2
    return t


def _measured_m(ms: list[int], M: int) -> list[int]:
    """The measured M (one, or two neighbours that must agree) whose choice serves ``M``.

    Exact match first.  For decode sizes (M <= 64) the kernel's cost steps with its token tiles, so a
    measured M with the same tile count serves (the smallest one >= M, else the largest); with none,
    the next larger measured M (the sparse kernels' advantage shrinks as M grows), and none at all
    (M above every measured M, more tiles): ``[]``, i.e. unmeasured.  Above 64, both neighbours;
    ``lookup`` takes their choice only if they agree.
    """
    if M in ms:
        return [M]
    larger = [m for m in ms if m > M]
    smaller = [m for m in ms if m < M]
    if M <= DECODE_TILES_MAX_M:
        same = [m for m in ms if m <= DECODE_TILES_MAX_M and _tiles(m) == _tiles(M)]
        if same:
            above = [m for m in same if m >= M]
            return [min(above) if above else max(same)]
        return [min(larger)] if larger else []
    if larger and smaller:
        return [max(smaller), min(larger)]
    return [min(larger)] if larger else [max(smaller)]


def _cells(table: dict, dtype: str, axis: str, N: int, K: int, ratio: float, M: int) -> list[str]:
    pre = f"{dtype},{axis},{N},{K},"
    keys = [k.split(",") for k in table if k.startswith(pre)]
    if not keys:
        return []
    rr = min({float(k[4]) for k in keys}, key=lambda v: abs(v - ratio))
    cells = {int(k[5]): ",".join(k) for k in keys if float(k[4]) == rr}
    return [cells[m] for m in _measured_m(sorted(cells), M)]


def lookup(table: dict, dtype: str, axis: str, N: int, K: int, ratio: float, M: int):
    """Entry of ``table`` at the nearest measured dense ratio for this dtype/axis/shape and the
    measured M that serves ``M`` (:func:`_measured_m`); ``"dense"`` where two neighbouring measured
    Ms disagree; None if the shape (or a decode M this large) was never measured."""
    vals = [table[k] for k in _cells(table, dtype, axis, N, K, ratio, M)]
    if not vals:
        return None
    return vals[0] if all(v == vals[0] for v in vals) else "dense"


def _dtype_key(layer) -> str | None:
    if layer.scale is not None:
        return "fp8"
    return "bf16" if layer.values.dtype == torch.bfloat16 else None


def default_choice(layer, M: int) -> str:
    dt = _dtype_key(layer)
    if dt is None:
        return "dense"
    N, K = layer.out_features, layer.in_features
    c = lookup(_table(), dt, layer.layout.axis, N, K, layer.layout.dense_ratio, M)
    if c is None:
        c = "mmasp" if M <= 8 else "dense"
    if c in ("mmasp", "triton") and M > 64:
        c = "dense"
    if dt == "fp8" and c == "cusparselt":
        c = "dense"
    return c


def default_mmasp_cfg(layer, M: int) -> tuple[int, int] | None:
    """The measured best mmasp (row tiles, warps) for the nearest measured cell, or None."""
    dt = _dtype_key(layer)
    if dt is None:
        return None
    cfgs = _full_table().get("mmasp_cfg", {})
    cells = _cells(cfgs, dt, layer.layout.axis, layer.out_features, layer.in_features,
                   layer.layout.dense_ratio, M)
    return tuple(cfgs[cells[0]]) if cells else None


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
            cands = [c for c in cands if c != "cusparselt"]
        res = {}
        for c in cands:
            try:
                res[c] = time_graph(lambda: layer.run_backend(c, x), reps=reps)
            except Exception:  # a backend that cannot run this shape is skipped
                res[c] = float("inf")
        best = min(res, key=res.get)
        layer.choice[b] = best
        if best == "dense":
            layer.fallbacks[b] = f"dense fastest: {res}"
        out[M] = res
    return out
