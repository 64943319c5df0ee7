"""``auto`` backend: measured choice per (layer shape, M bucket), with a built-in default table."""

from __future__ import annotations

import torch

# Default choice when a layer was not tuned: the fastest backend measured by
# benchmarks/linear_bench.py on an H100 (auto_table.json, derived by benchmarks/make_auto_table.py:
# "dtype,axis,N,K,dense_ratio,M" -> backend, plus the measured best mmasp launch config), looked up
# at the nearest measured dense ratio and M; shapes never measured use a conservative rule (mmasp
# for M <= 8, where the kernel runs one 8-token tile, dense otherwise) - call SpenseLinear.tune()
# to measure them.
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


def _nearest_key(table: dict, dtype: str, axis: str, N: int, K: int, ratio: float, M: int) -> str | None:
    pre = f"{dtype},{axis},{N},{K},"
    keys = [k.split(",") for k in table if k.startswith(pre)]
    if not keys:
        return None
    ratios = sorted({float(k[4]) for k in keys})
    rr = min(ratios, key=lambda v: abs(v - ratio))
    ms = sorted({int(k[5]) for k in keys if float(k[4]) == rr})
    mm = min(ms, key=lambda v: abs(v - M) / max(v, M))
    for k in keys:
        if float(k[4]) == rr and int(k[5]) == mm:
            return ",".join(k)
    return None  # pragma: no cover


def lookup(table: dict, dtype: str, axis: str, N: int, K: int, ratio: float, M: int):
    """Nearest measured (dense ratio, M) entry of ``table`` for this dtype/axis/shape, or None."""
    k = _nearest_key(table, dtype, axis, N, K, ratio, M)
    return None if k is None else table[k]


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
    c = lookup(_full_table().get("mmasp_cfg", {}), dt, layer.layout.axis, layer.out_features,
               layer.in_features, layer.layout.dense_ratio, M)
    return tuple(c) if c else None


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
            except Exception as e:  # a backend that cannot run this shape is skipped
                res[c] = float("inf")
        best = min(res, key=res.get)
        layer.choice[b] = best
        if best == "dense":
            layer.fallbacks[b] = f"dense fastest: {res}"
        out[M] = res
    return out
