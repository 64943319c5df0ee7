"""Operand bytes per second that the TMA prefill kernels moved into shared memory, from a recorded
``run_wgsp.sh`` output (its ``wgsp_ws`` / ``wgsp_ws1`` timings), for the runs recorded before the harness
printed it itself (``operands`` lines, since e2e v16):

    python3 benchmarks/wgsp_operand_rate.py benchmarks/results/wgsp_2026-12-01/d_probe_5b441ab/wgsp.txt

Per CTA and 64-column step a kernel loads one x tile (128 tokens x 64 columns of bf16: 16 KB) and the step's
A box of all its row tiles (sparse: 1 KB of values + 128 B of metadata per tile; dense: 2 KB per tile).  With
the harness's layouts (``spense_layout_gen.h``: columns as whole 64-blocks, rows as whole 16-row tiles) a
dense fraction d gives round(d K / 64) dense steps on every row tile (axis c), or round(d N / 16) row tiles
of K / 64 dense steps (axis r).  Prints TB/s = bytes / time for the timed lines (those after a ``## timing``
or ``## probe`` header).
"""

from __future__ import annotations

import re
import sys

XT = 128 * 64 * 2  # x tile bytes per step


def operand_bytes(N: int, K: int, d: float, axis: str, M: int, tiles: int) -> float:
    """Bytes of x tiles and A boxes that ``spense_wgsp_ws_kernel`` with ``tiles`` row tiles per CTA loads."""
    steps, ntok = K // 64, (M + 127) // 128
    if axis == "c":
        nd = int(steps * d + 0.5)  # std::lround, as the layout generator
        per_cta = (steps - nd) * (XT + tiles * 1152) + nd * (XT + tiles * 2048)
        return ntok * (N // (16 * tiles)) * per_cta
    bd = int(N * d / 16 + 0.5)  # dense row tiles
    sparse_ctas, dense_ctas = ntok * ((N // 16 - bd) // tiles), ntok * (bd // tiles)
    return steps * (sparse_ctas * (XT + tiles * 1152) + dense_ctas * (XT + tiles * 2048))


def main(path: str) -> None:
    print("| N | K | d | axis | M | wgsp_ws (16 tiles) TB/s | wgsp_ws1 (8 tiles) TB/s |")
    print("|---|---|---|---|---|---|---|")
    timed = False
    for line in open(path):
        if line.startswith("## "):
            timed = line.startswith(("## timing", "## probe"))
        m = re.match(r"N=(\d+) K=(\d+) d=([\d.]+) axis=(\w) M=(\d+) .*wgsp_ws ([\d.]+) us.*wgsp_ws1 ([\d.]+) us", line)
        if not m or not timed:
            continue
        N, K, d, ax, M = int(m[1]), int(m[2]), float(m[3]), m[4], int(m[5])
        if N % 256:  # 16-tile CTAs need the row tiles in sixteens
            continue
        r16 = operand_bytes(N, K, d, ax, M, 16) / float(m[6]) / 1e6
        r8 = operand_bytes(N, K, d, ax, M, 8) / float(m[7]) / 1e6
        print(f"| {N} | {K} | {d:.2f} | {ax} | {M} | {r16:.2f} | {r8:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
