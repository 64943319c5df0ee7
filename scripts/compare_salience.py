"""Compare dense-column rankings for ``salience-cols`` on synthetic layers (a measurement, not a test).

Usage: python scripts/compare_salience.py [--seeds 3] [--N 256] [--K 512] [--tokens 4096] [--ratio 0.25]

Each synthetic layer has inputs ``X = Z · diag(scale) · M`` with log-normal channel scales, a few
outlier channels (x20) and mild channel mixing ``M``, and weights with a few large output rows.  For
every ranking the script runs the same OBS 2:4 sweep with the chosen dense columns and prints the
exact reconstruction loss ``‖(W - Ŵ)X‖²/n`` relative to pure 2:4 SparseGPT (ratio 0).

Rankings: ``obs`` (trial-pass column loss), ``act`` (``H_jj·‖W_:,j‖²``), ``obs-col``
(``Σ_i W_ij² / [H⁻¹]_jj``, the OBS cost of removing the whole column; the library default), ``random``,
``first``.  ``loss-rows`` and unstructured at the same density are printed for scale.
"""

from __future__ import annotations

import argparse
import time

import torch

from spense.hessian import HessianAccumulator
from spense.selection import select_layout
from spense.solver import obs_prune


def synthetic_layer(seed: int, N: int, K: int, T: int, outliers: int = 8, big_rows: int = 4):
    g = torch.Generator().manual_seed(seed)
    scale = torch.exp(0.5 * torch.randn(K, generator=g))
    scale[torch.randperm(K, generator=g)[:outliers]] *= 20.0
    mix = torch.eye(K) + 0.5 * torch.randn(K, K, generator=g) / K**0.5
    X = (torch.randn(T, K, generator=g) * scale) @ mix
    W = torch.randn(N, K, generator=g) / K**0.5
    W[torch.randperm(N, generator=g)[:big_rows]] *= 5.0
    acc = HessianAccumulator(K, name=f"synthetic{seed}")
    for chunk in X.split(1024):
        acc.add(chunk)
    return W, acc.H


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--N", type=int, default=256)
    ap.add_argument("--K", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--ratio", type=float, default=0.25)
    ap.add_argument("--block", type=int, default=64)
    a = ap.parse_args()
    names = ["obs", "act", "obs-col", "random", "first", "loss-rows", "unstructured"]
    rel = {k: [] for k in names}
    t0 = time.perf_counter()
    for seed in range(a.seeds):
        W, H = synthetic_layer(seed, a.N, a.K, a.tokens)
        base = obs_prune(W, H).loss
        row = {}
        for k in ("obs", "act", "obs-col"):
            lay, _ = select_layout(W, H, "salience-cols", a.ratio, block=a.block, salience=k)
            row[k] = obs_prune(W, H, layout=lay).loss
        for k in ("random", "first"):
            lay, _ = select_layout(W, H, k, a.ratio, block=a.block, seed=seed)
            row[k] = obs_prune(W, H, layout=lay).loss
        lay, _ = select_layout(W, H, "loss-rows", a.ratio, block=a.block)
        row["loss-rows"] = obs_prune(W, H, layout=lay).loss
        r = a.ratio
        row["unstructured"] = obs_prune(W, H, sparsity=1 - (r + (1 - r) / 2)).loss
        print(f"seed {seed}: 2:4 loss {base:.4g}  " + "  ".join(f"{k} {row[k] / base:.3f}" for k in names))
        for k in names:
            rel[k].append(row[k] / base)
    print(f"mean loss relative to pure 2:4 (N={a.N}, K={a.K}, ratio {a.ratio}, {a.seeds} seeds, "
          f"{time.perf_counter() - t0:.1f}s):")
    for k in names:
        v = torch.tensor(rel[k])
        print(f"  {k:13s} {v.mean():.3f}  (min {v.min():.3f}, max {v.max():.3f})")


if __name__ == "__main__":
    main()
