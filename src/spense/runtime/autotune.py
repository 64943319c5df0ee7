"""``auto`` backend: measured choice per (layer shape, M bucket).

Which table serves a GPU (:func:`table_for`):

1. the built-in ``auto_table.json``, only on the GPU it was measured on (same device name and
   compute capability, both recorded in the table);
2. else the per-device cache ``$SPENSE_CACHE/autotune/<device>-sm<cc>.json`` (default
   ``~/.cache/spense``), written by :func:`save_device_table` after :func:`tune_layer` measured
   the layers on this GPU (``SpenseLinear.tune()`` then ``save_device_table``);
3. else a packaged launch-config table ``mmasp_cfg_<gpu>.json`` of this GPU (device name and
   capability), made from kernel-harness runs by ``benchmarks/make_mmasp_cfg_table.py``: the mma.sp
   launch config (row tiles, warps) per shape and M; the backend follows the safe rules of 4.;
4. else no table: the rules that are safe everywhere (the mma.sp kernel with its launch heuristic
   for decode sizes, the transient dense path above).

One log line (logger ``spense``) says which, once per device.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch

log = logging.getLogger("spense")

from spense.runtime.shapes import DECODE_MAX_M, bucket  # the one M-bucketing rule and the decode range
from spense.runtime.timing import time_graph

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


def cache_dir() -> Path:
    """``$SPENSE_CACHE`` (default ``~/.cache/spense``)."""
    return Path(os.environ.get("SPENSE_CACHE") or Path.home() / ".cache" / "spense").expanduser()


def device_key(name: str, capability: tuple[int, int] | list[int]) -> str:
    """File-name-safe ``<device name>-sm<major><minor>``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") + f"-sm{capability[0]}{capability[1]}"


def device_table_path(name: str, capability) -> Path:
    return cache_dir() / "autotune" / f"{device_key(name, capability)}.json"


def table_source(table: dict, name: str, capability) -> str:
    """``"builtin"`` if ``table`` was measured on this device (name and capability), else ``"other"``."""
    same = table.get("device") == name and list(table.get("capability") or []) == list(capability)
    return "builtin" if same else "other"


_DEVICE_TABLES: dict[str, tuple[str, dict]] = {}


def packaged_cfg_table(name: str, capability) -> dict | None:
    """The packaged launch-config table (``mmasp_cfg_*.json`` beside this module) measured on this
    GPU, its ``mmasp_cfg`` only, or None.  ``SPENSE_MMASP_CFG=<file>``: that table instead (e.g. one made by
    ``benchmarks/make_mmasp_cfg_table.py`` from newer runs, for an A/B of the engine with it); it too serves
    only the GPU it names, and a file that cannot be read as a table is an error.  Like the packaged table it
    comes after a per-device cache (:func:`table_for`)."""
    override = os.environ.get("SPENSE_MMASP_CFG")
    paths = [Path(override)] if override else sorted(Path(__file__).parent.glob("mmasp_cfg_*.json"))
    for p in paths:
        try:
            t = json.loads(p.read_text())
            if not isinstance(t, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            if override:
                raise ValueError(f"SPENSE_MMASP_CFG={override}: not a readable launch-config table ({e})") from None
            continue  # pragma: no cover - a damaged install
        if table_source(t, name, capability) == "builtin":
            return {"device": t["device"], "capability": t["capability"], "mmasp_cfg": t.get("mmasp_cfg", {})}
    return None


def _cfg_source() -> str:
    """Where :func:`packaged_cfg_table` read the launch configs, for the log: ``SPENSE_MMASP_CFG``'s file or the
    packaged table."""
    return os.environ.get("SPENSE_MMASP_CFG") or "the packaged table of this GPU"


def table_for(device: torch.device | None = None) -> tuple[str, dict]:
    """``(source, table)`` for the current CUDA device: ``builtin``, ``cache``, ``cfg`` (the packaged
    launch configs of this GPU, no backend choices) or ``safe`` ({}).  The launch configs (``mmasp_cfg``) of a
    packaged table measured on this GPU (:func:`packaged_cfg_table`, or ``SPENSE_MMASP_CFG`` where it names it)
    replace the built-in table's, measured on 2026-11-24's kernels; ``SPENSE_MMASP_CFG`` replaces a cache's too."""
    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return "safe", {}
    name = torch.cuda.get_device_name(device)
    cc = tuple(torch.cuda.get_device_capability(device))
    key = device_key(name, cc)
    if key in _DEVICE_TABLES:
        return _DEVICE_TABLES[key]
    full = _full_table()
    if table_source(full, name, cc) == "builtin":
        res = ("builtin", full)
        log.warning("spense auto backend: built-in table (measured on this GPU, %s sm%d%d)", name, *cc)
    else:
        p = device_table_path(name, cc)
        try:
            res = ("cache", json.loads(p.read_text()))
            log.warning("spense auto backend: table measured on this GPU, from %s", p)
        except (OSError, ValueError):
            cfg = packaged_cfg_table(name, cc)
            res = ("safe", {}) if cfg is None else ("cfg", cfg)
            log.warning("spense auto backend: no table for %s sm%d%d (built-in table is for %s); safe "
                        "choices (mma.sp kernel for decode sizes)%s; SpenseLinear.tune() + "
                        "autotune.save_device_table() measure this GPU", name, cc[0], cc[1], full.get("device"),
                        "" if cfg is None else ", with the launch configs from " + _cfg_source())
    if res[0] == "builtin" or (res[0] == "cache" and os.environ.get("SPENSE_MMASP_CFG")):
        cfg = packaged_cfg_table(name, cc)
        if cfg is not None:
            res = (res[0], dict(res[1], mmasp_cfg=cfg["mmasp_cfg"]))
            log.warning("spense auto backend: launch configs from %s", _cfg_source())
    _DEVICE_TABLES[key] = res
    return res


def save_device_table(layers, device: torch.device) -> Path:
    """Write the measured choices of ``layers`` (after :func:`tune_layer`) to this device's cache file
    (atomic), merged with what it held; the next process uses it (:func:`table_for`)."""
    name = torch.cuda.get_device_name(device)
    cc = tuple(torch.cuda.get_device_capability(device))
    p = device_table_path(name, cc)
    try:
        table = json.loads(p.read_text())
    except (OSError, ValueError):
        table = {}
    table.update({"device": name, "capability": list(cc)})
    choice = table.setdefault("choice", {})
    cfgs = table.setdefault("mmasp_cfg", {})
    for layer in layers:
        dt = _dtype_key(layer)
        if dt is None:
            continue
        pre = f"{dt},{layer.layout.axis},{layer.out_features},{layer.in_features},{layer.layout.dense_ratio:g},"
        for b, c in layer.choice.items():
            choice[pre + str(b)] = c
        for b, cfg in layer.mmasp_cfg.items():
            cfgs[pre + str(b)] = list(cfg)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    os.replace(tmp, p)
    _DEVICE_TABLES.pop(device_key(name, cc), None)
    return p


def _layer_table(layer) -> dict:
    dev = layer.values.device if layer.values.numel() or layer.values.device.type == "cuda" else None
    return table_for(dev)[1]


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


def default_choice(layer, M: int, table: dict | None = None) -> str:
    """Backend for ``layer`` at ``M`` from ``table`` (default: :func:`table_for` the layer's device);
    unmeasured: mma.sp for M <= 8, dense otherwise."""
    dt = _dtype_key(layer)
    if dt is None:
        return "dense"
    N, K = layer.out_features, layer.in_features
    table = _layer_table(layer) if table is None else table
    c = lookup(table.get("choice", {}), dt, layer.layout.axis, N, K, layer.layout.dense_ratio, M)
    if c is None:
        c = "mmasp" if M <= 8 else "dense"
    if c in ("mmasp", "triton") and M > 64:
        c = "dense"
    if dt == "fp8" and c == "cusparselt":
        c = "dense"
    return c


def cfg_cell(layer, M: int, table: dict | None = None) -> str | None:
    """The key (``dtype,axis,N,K,ratio,M'``) of the launch-config cell of ``table`` (default: the layer's device's) that
    serves ``layer`` at ``M``: the nearest measured dense ratio, and M' the measured M that serves M
    (:func:`_measured_m`: M itself where measured, else a neighbour with the same token tiles); None: no cell."""
    dt = _dtype_key(layer)
    if dt is None:
        return None
    table = _layer_table(layer) if table is None else table
    cells = _cells(table.get("mmasp_cfg", {}), dt, layer.layout.axis, layer.out_features, layer.in_features,
                   layer.layout.dense_ratio, M)
    return cells[0] if cells else None


def default_mmasp_cfg(layer, M: int, table: dict | None = None) -> tuple[int, int] | None:
    """The measured best mmasp (row tiles, warps) of the cell :func:`cfg_cell` names, or None."""
    if _dtype_key(layer) is None:
        return None
    table = _layer_table(layer) if table is None else table
    key = cfg_cell(layer, M, table)
    return None if key is None else tuple(table["mmasp_cfg"][key])


def tune_layer(layer, ms, candidates=None, reps: int = 20) -> dict:
    dev = layer.values.device
    if dev.type != "cuda":
        return {}
    out = {}
    for M in ms:
        b = bucket(M)
        x = torch.randn(M, layer.in_features, device=dev, dtype=torch.bfloat16)
        cands = list(candidates or ["dense", "cusparselt", "mmasp", "triton"])
        if M > DECODE_MAX_M:
            cands = [c for c in cands if c not in ("mmasp", "triton")]
        if layer.scale is not None:
            cands = [c for c in cands if c != "cusparselt"]
        res = {}
        for c in cands:
            try:
                res[c] = time_graph([lambda: layer.run_backend(c, x)], reps=reps, warmup=3)
            except Exception:  # a backend that cannot run this shape is skipped
                res[c] = float("inf")
        best = min(res, key=res.get)
        layer.choice[b] = best
        if best == "dense":
            layer.fallbacks[b] = f"dense fastest: {res}"
        out[M] = res
    return out
