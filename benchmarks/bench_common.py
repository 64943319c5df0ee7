"""What the per-layer benchmarks share (device only): the Qwen3 layer shapes, a random Spense weight, timing under a
CUDA graph, the copy bandwidth, the run's metadata, the prefill scripts' arguments and the row files.  Used by
linear_bench, prefill_bench, sparse_gemm_probe, sk_timeline and gpu_probe."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from spense.format import SpenseLayout, dense_count  # noqa: E402
from spense.provenance import current_commit, source_digest  # noqa: E402

# (name, N out, K in)
SHAPES = [
    ("8B.qkv", 6144, 4096), ("8B.o", 4096, 4096), ("8B.gate_up", 24576, 4096), ("8B.down", 4096, 12288),
    # the separate projections of the (unfused) Qwen3-8B model that `spense bench` runs: k or v and gate or
    # up (q has the 8B.o shape)
    ("8B.kv", 1024, 4096), ("8B.gate", 12288, 4096),
    ("32B.qkv", 10240, 5120), ("32B.o", 5120, 8192), ("32B.gate_up", 51200, 5120), ("32B.down", 5120, 25600),
]


def make_weight(N, K, axis, ratio, gen, device="cuda", dtype=torch.bfloat16, cols_layout="blocks"):
    dim = N if axis == "rows" else K
    nd = dense_count(dim, ratio)
    if axis == "cols" and cols_layout == "blocks" and 0 < nd < dim:
        # whole aligned 64-column blocks (what `spense bench` selects): the kernel reads x per block
        nb = dim // 64
        blk = torch.randperm(nb, generator=gen)[: nd // 64].sort().values
        idx = (blk[:, None] * 64 + torch.arange(64)).reshape(-1)
    else:
        idx = torch.randperm(dim, generator=gen)[:nd].sort().values
    lay = SpenseLayout((N, K), axis, idx)
    w = torch.randn(N, K, generator=gen).to(device=device, dtype=dtype)
    # 2:4 prune (random 2 of each group of 4) of the sparse region, by magnitude of a random score
    s, d = lay.split(w)
    if s.numel():
        g = s.reshape(s.shape[0], -1, 4)
        sc = torch.rand(g.shape, device=device)
        keep = sc.argsort(-1).argsort(-1) < 2
        s = (g * keep).reshape(s.shape)
    return lay.merge(s, d), lay


def time_graph(fns, reps_per_fn=4, replays=7):
    """Median ms per call: one CUDA graph calling every fn (weight copies) reps_per_fn times."""
    from spense.runtime.timing import time_graph as graph_ms

    return graph_ms(fns, reps_per_fn, replays)


def copy_bandwidth():
    """GB/s (read + write) of an eager 1 GiB device-to-device copy (a copy captured in a CUDA graph
    runs on the copy engines and reads low: 2.7 instead of 4.25 TB/s on the H200)."""
    from spense.engine.measure import copy_bandwidth as measured

    return measured(torch.device("cuda")) / 1e9


def run_meta() -> dict:
    """What every benchmark file records about its run: device, commit (``SPENSE_COMMIT``, else git),
    ``src_digest``, UTC date, the command line and the copy bandwidth measured now (GB/s)."""
    return {"device": torch.cuda.get_device_name(), "commit": current_commit(), "src_digest": source_digest(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cmd": " ".join(sys.argv), "copy_gbps": copy_bandwidth()}


def prefill_parser(ms: str) -> argparse.ArgumentParser:
    """The arguments of the prefill-size benchmarks (prefill_bench, sparse_gemm_probe): ``--out``,
    ``--shapes`` (the 8B shapes and 32B's big two), ``--ms`` (default ``ms``), ``--min-bytes`` (weight
    copies rotated per timing)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "out"))
    ap.add_argument("--shapes", default="8B.qkv,8B.o,8B.gate_up,8B.down,32B.gate_up,32B.down")
    ap.add_argument("--ms", default=ms)
    ap.add_argument("--min-bytes", type=float, default=256e6)
    return ap


def save_rows(out: str, name: str, meta: dict, rows: list, write_md) -> None:
    """``{out}/{name}.json`` (meta + rows) and ``{out}/{name}.md`` (``write_md(rows, path, meta)``),
    rewritten after every shape so that a failure later keeps what was measured."""
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump({**meta, "rows": rows}, f, indent=1)
    write_md(rows, os.path.join(out, f"{name}.md"), meta)


def rel_err(y, ref):
    return ((y.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-30)).item()
