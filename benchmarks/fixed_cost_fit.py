"""Fixed cost per launch and streaming rate of the mma.sp kernels, from a harness sweep over N.

    SWEEP=1 OUT=<dir> bash benchmarks/run_bulk_ab.sh        # on the device: K = 4096, M = 1, N swept
    python3 benchmarks/fixed_cost_fit.py <dir>/bulk_ab.txt [--kernels reg_xf,reg_xf_pf]

For each kernel column and launch (dtype, K, M, warps, dependent launch), a least-squares line through
the points ``(bytes, µs)`` of the swept N:

    t = t0 + bytes / R

``t0`` (µs) is what a launch costs whatever its size: launch, ramp-up to the first weight bytes, tail
and epilogue, and also the few load round trips that the warps of a small layer make when its CTAs do
not fill the GPU; ``R`` (TB/s) is the rate at which the weights then stream.  It describes the swept
sizes only: a kernel whose parallelism grows with N much faster than its bytes (the shared-x kernel
at M = 1) fits a rate above the copy bandwidth.  docs/e2e.md v12 fitted
t0 ≈ 4.9 µs and R ≈ 3.9 TB/s from the four Qwen3-8B shapes; cuBLAS in the same step ≈ 3.2 µs and
4.3 TB/s.  A line's bytes are the harness's own (its GB/s times its µs).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from make_mmasp_cfg_table import LINE, header  # noqa: E402

COLUMN = re.compile(r"\| (\w+) ([\d.]+) us (\d+) GB/s")


def parse(text: str) -> tuple[dict, dict[tuple, list[tuple[float, float]]]]:
    """``(header, groups)``: per ``(kernel, fp8, K, M, RT, warps, pdl)`` the ``(bytes, µs)`` points (25 %
    dense columns only: the sweep's lines)."""
    head: dict = {}
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for line in text.splitlines():
        if (h := header(line)) is not None:
            head = h
            continue
        m = LINE.search(line)
        if not m or m.group(4) != "c" or float(m.group(3)) != 0.25:
            continue
        _, K, _, _, fp8, M, RT, warps, pdl = m.groups()
        for name, us, gbps in COLUMN.findall(line):
            us, gbps = float(us), float(gbps)
            if us <= 0 or gbps <= 0 or name == "copy":
                continue
            key = (name, int(fp8), int(K), int(M), int(RT), int(warps), int(pdl or 0))
            groups.setdefault(key, []).append((gbps * us * 1e3, us))
    return head, groups


def fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """``(t0 µs, R TB/s, r²)`` of ``t = t0 + bytes / R`` by least squares."""
    n = len(points)
    mx = sum(b for b, _ in points) / n
    my = sum(t for _, t in points) / n
    sxx = sum((b - mx) ** 2 for b, _ in points)
    sxy = sum((b - mx) * (t - my) for b, t in points)
    slope = sxy / sxx  # µs per byte
    t0 = my - slope * mx
    syy = sum((t - my) ** 2 for _, t in points)
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else 1.0
    return t0, 1e-6 / slope if slope > 0 else float("inf"), r2  # bytes/µs * 1e6 / 1e12


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="harness outputs (bulk_ab.txt)")
    ap.add_argument("--kernels", default="reg_xf,reg_xf_pf,reg_xf_u2,reg",
                    help="kernel columns to fit (comma-separated)")
    ap.add_argument("--min-points", type=int, default=3)
    a = ap.parse_args()
    want = a.kernels.split(",")
    print("| file | kernel | dtype | K | M | RT | warps | pdl | points | t0 µs | R TB/s | r² |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in a.files:
        with open(path) as f:
            head, groups = parse(f.read())
        label = f"{os.path.basename(os.path.dirname(path)) or path} ({head.get('commit', '?')})"
        for key in sorted(groups, key=lambda k: (want.index(k[0]) if k[0] in want else 99, k[1:])):
            name, fp8, K, M, RT, warps, pdl = key
            pts = groups[key]
            if name not in want or len({round(b) for b, _ in pts}) < a.min_points:
                continue
            t0, rate, r2 = fit(pts)
            print(f"| {label} | {name} | {'e4m3' if fp8 else 'bf16'} | {K} | {M} | {RT} | {warps} | {pdl} "
                  f"| {len(pts)} | {t0:.2f} | {rate:.2f} | {r2:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
