"""Is cuBLAS the fastest dense BF16 GEMM at decode?  cuBLAS (``F.linear``) against the weight-streaming Triton
kernel of the FP8 dense baseline (``spense.runtime.fp8_dense.w8a16_kernel``) run on a bf16 weight, per Qwen3
shape and M, under CUDA graphs with the weights rotated past L2 (runs on the device machine).

    PYTHONPATH=src python3 benchmarks/bf16_dense_probe.py --out $OUT/probe [--ms 1,8,16] [--quick]
    PYTHONPATH=src python3 benchmarks/bf16_dense_probe.py --table src/spense/runtime/dense_table.json

``--table PATH``: the dense layers' table instead (:mod:`spense.runtime.dense`): per shape (the eight above and the
two lm_heads) and M bucket 1-64, ``dense.measure`` (cuBLAS against ``dense.STREAM_CONFIGS``, the code a user's first
call runs) and the fastest kind, written as ``{"device", "cc", "cells": {"N,K,bucket": kind}, "times": ...}``.

Writes ``probe.json`` (every config's µs per shape and M, cuBLAS's, the copy bandwidth) and ``probe.md`` (per shape
and M: cuBLAS, the fastest Triton config, their GB/s and ratio).  The kernel's scale is a vector of ones (one
float32 load per output channel: 0.01 % of a weight's bytes).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from spense.engine.measure import copy_bandwidth  # noqa: E402
from spense.provenance import current_commit  # noqa: E402
from spense.runtime import fp8_dense  # noqa: E402
from spense.runtime.timing import time_graph  # noqa: E402

SHAPES = [("8B.qkv", 6144, 4096), ("8B.o", 4096, 4096), ("8B.gate_up", 24576, 4096), ("8B.down", 4096, 12288),
          ("32B.qkv", 10240, 5120), ("32B.o", 5120, 8192), ("32B.gate_up", 51200, 5120), ("32B.down", 5120, 25600)]


def configs(quick: bool) -> list[tuple[int, ...]]:
    """(BLOCK_N, BLOCK_K, SPLIT_K, num_warps, MODE, num_stages, serial) candidates that fit 200 KB of bf16 tiles."""
    bns, bks, sks, nws, sts = ([32, 64], [128, 256], [1, 2, 4], [4], [3, 5]) if quick else (
        [16, 32, 64], [128, 256, 512], [1, 2, 4], [4, 8], [3, 5])
    out = []
    for bn, bk, sk, nw, st in itertools.product(bns, bks, sks, nws, sts):
        if st * (16 * bk * 2 + bn * bk * 2) <= fp8_dense.SMEM_BUDGET:
            out.append((bn, bk, sk, nw, 0, st, 1 if sk > 1 else 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    ap.add_argument("--table", default="")
    ap.add_argument("--ms", default="1,8,16")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shapes", default="")
    a = ap.parse_args()
    dev = torch.device("cuda")
    if a.table:
        return write_table(a.table, dev)
    if not a.out:
        ap.error("--out or --table")
    os.makedirs(a.out, exist_ok=True)
    bw = copy_bandwidth(dev) / 1e9  # GB/s
    cfgs = configs(a.quick)
    ms = [int(m) for m in a.ms.split(",")]
    shapes = [s for s in SHAPES if not a.shapes or s[0] in a.shapes.split(",")]
    rows = []
    for name, N, K in shapes:
        ncop = max(2, min(8, math.ceil(256e6 / (N * K * 2))))
        ws = [torch.randn(N, K, device=dev, dtype=torch.bfloat16) for _ in range(ncop)]
        ones = torch.ones(N, device=dev, dtype=torch.float32)
        for M in ms:
            x = torch.randn(M, K, device=dev, dtype=torch.bfloat16)
            ref = F.linear(x, ws[0]).float()
            t_cub = time_graph([lambda w=w: F.linear(x, w) for w in ws]) * 1e3
            tri = {}
            for cfg in cfgs:
                try:
                    y = fp8_dense.launch_w8a16(x, ws[0], ones, cfg, pdl=0).float()
                    err = ((y - ref).norm() / ref.norm()).item()
                    if not err < 1e-2:
                        raise RuntimeError(f"rel err {err:.3g}")
                    tri[fp8_dense_name(cfg)] = time_graph(
                        [lambda w=w: fp8_dense.launch_w8a16(x, w, ones, cfg, pdl=0) for w in ws]) * 1e3
                except Exception as e:  # noqa: BLE001 - a config that fails to compile or run is reported
                    tri[fp8_dense_name(cfg)] = f"failed: {str(e)[:120]}"
            ok = {k: v for k, v in tri.items() if isinstance(v, float)}
            best = min(ok, key=ok.get) if ok else None
            nbytes = N * K * 2
            row = {"shape": name, "N": N, "K": K, "M": M, "cublas_us": t_cub, "cublas_gbps": nbytes / t_cub / 1e3,
                   "best": best, "best_us": ok.get(best), "best_gbps": nbytes / ok[best] / 1e3 if best else None,
                   "triton": tri}
            rows.append(row)
            print(f"{name} M={M}: cuBLAS {t_cub:.2f} us ({row['cublas_gbps']:.0f} GB/s); best Triton {best} "
                  f"{ok.get(best, float('nan')):.2f} us ({row['best_gbps'] or 0:.0f} GB/s); "
                  f"x{t_cub / ok[best] if best else float('nan'):.3f}", flush=True)
        del ws
        torch.cuda.empty_cache()
        write(a.out, rows, bw)


def write(out: str, rows: list, bw: float) -> None:
    """probe.json and probe.md of the rows so far (rewritten after each shape: a run cut by its limit keeps them)."""
    meta = {"device": torch.cuda.get_device_name(), "copy_gbps": bw, "commit": current_commit(),
            "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "command": " ".join(sys.argv),
            "torch": torch.__version__}
    with open(os.path.join(out, "probe.json"), "w") as f:
        json.dump({**meta, "rows": rows}, f, indent=1)
    lines = [f"# cuBLAS BF16 against the weight-streaming Triton kernel on bf16 weights ({meta['device']}, "
             f"{meta['date']}, {meta['commit']}, copy {bw:.0f} GB/s)", "", f"`{meta['command']}`", "",
             "| shape | M | cuBLAS µs | GB/s | best Triton config | µs | GB/s | cuBLAS / Triton |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['M']} | {r['cublas_us']:.2f} | {r['cublas_gbps']:.0f} | {r['best']} | "
                     f"{r['best_us'] or float('nan'):.2f} | {r['best_gbps'] or 0:.0f} | "
                     f"{r['cublas_us'] / r['best_us'] if r['best_us'] else float('nan'):.3f} |")
    with open(os.path.join(out, "probe.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


LM_HEADS = [("8B.lm_head", 151936, 4096), ("32B.lm_head", 151936, 5120)]


def write_table(path: str, dev: torch.device) -> None:
    """The dense layers' table (module doc), written atomically to ``path``."""
    from spense.runtime import dense
    from spense.runtime.fp8 import device_key

    name, cc = device_key(dev)
    cells, times = {}, {}
    for label, N, K in SHAPES + LM_HEADS:
        for b in (1, 2, 4, 8, 16, 32, 64):
            t = dense.measure(N, K, b, dev)
            key = f"{N},{K},{b}"
            cells[key] = dense.fastest(t)
            times[key] = {k: round(v * 1e3, 3) for k, v in t.items()}  # us
            print(f"{label} M={b}: {cells[key]} {times[key][cells[key]]:.2f} us, cuBLAS {times[key]['cublas']:.2f} us "
                  f"(x{times[key]['cublas'] / times[key][cells[key]]:.3f})", flush=True)
    d = {"device": name, "cc": cc, "commit": current_commit(), "command": " ".join(sys.argv),
         "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "margin": dense.MARGIN, "cells": cells,
         "times_us": times}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
    os.replace(tmp, path)


def fp8_dense_name(cfg) -> str:
    return "x".join(str(c) for c in cfg)


if __name__ == "__main__":
    main()
