"""SM clock and power over a device run, from ``nvidia-smi --query-gpu=timestamp,clocks.sm,...,power.draw
--format=csv -lms 100`` (``clocks.csv``), with the start of each kernel's timings in ``prefill_diag.py``'s log marked.

    python benchmarks/clock_plot.py benchmarks/results/wgsd_2026-12-06/cm_4c02516_h100_prefill_power_cap

Writes ``clocks.png`` into the folder.  A kernel's timings start at the ``t=`` epoch its log line gives; the
clock trace shows where they end (the clock back at its maximum).  nvidia-smi writes the machine's local time,
read here as UTC (the device machines run in UTC)."""

from __future__ import annotations

import csv
import datetime
import os
import re
import sys


def read_clocks(path: str) -> tuple[list[float], list[float], list[float]]:
    """Epoch seconds, SM MHz and watts per sample (rows that do not parse are left out)."""
    ts, mhz, watts = [], [], []
    with open(path) as f:
        rows = list(csv.reader(f))
    head = [h.strip() for h in rows[0]] if rows else []
    i_sm = next((i for i, h in enumerate(head) if h.startswith("clocks.current.sm")), None)
    i_w = next((i for i, h in enumerate(head) if h.startswith("power.draw")), None)
    if i_sm is None or i_w is None:
        sys.exit(f"clock_plot: {path} has no clocks.current.sm and power.draw columns")
    for r in rows[1:]:
        try:
            t = datetime.datetime.strptime(r[0].strip(), "%Y/%m/%d %H:%M:%S.%f")
            sample = (t.replace(tzinfo=datetime.timezone.utc).timestamp(), float(r[i_sm].split()[0]),
                      float(r[i_w].split()[0]))
        except (ValueError, IndexError):
            continue
        for col, v in zip((ts, mhz, watts), sample):
            col.append(v)
    return ts, mhz, watts


def read_phases(path: str) -> list[tuple[str, float]]:
    """(label, start epoch) per ``round R SHAPE KERNEL: ... (t=EPOCH)`` line."""
    out = []
    with open(path) as f:
        for line in f:
            m = re.match(r"round (\d+) (\S+) (\S+):.*\(t=([0-9.]+)\)", line)
            if m:
                out.append((f"{m[2]} {m[3]}", float(m[4])))
    return out


def main(folder: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("clocks.csv", "diag.txt"):
        if not os.path.isfile(os.path.join(folder, name)):
            sys.exit(f"clock_plot: {folder} has no {name}")
    ts, mhz, watts = read_clocks(os.path.join(folder, "clocks.csv"))
    phases = read_phases(os.path.join(folder, "diag.txt"))
    if not ts or not phases:
        sys.exit(f"clock_plot: no clock samples or no timed phases under {folder}")
    t0, t1 = phases[0][1] - 1.0, phases[-1][1] + 2.0
    keep = [i for i, t in enumerate(ts) if t0 <= t <= t1]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot([ts[i] - t0 for i in keep], [mhz[i] for i in keep], color="tab:blue", label="SM clock (MHz)")
    ax.set_ylabel("SM clock (MHz)")
    ax.set_xlabel("seconds")
    ax2 = ax.twinx()
    ax2.plot([ts[i] - t0 for i in keep], [watts[i] for i in keep], color="tab:red", alpha=0.6, label="power (W)")
    ax2.set_ylabel("power draw (W, averaged by the driver)")
    for label, a in phases:
        color = "tab:green" if "wgsp" in label else "black"
        ax.axvline(a - t0, color=color, linestyle="--", linewidth=1)
        lo, hi = ax.get_ylim()
        y = hi - 0.12 * (hi - lo) if "wgsp" in label else lo + 0.03 * (hi - lo)  # apart: the two start close
        ax.text(a - t0 + 0.03, y, label.replace(" ", "\n"), color=color, fontsize=7)
    ax.set_title("Prefill GEMMs at M = 2048: SM clock under the power cap (dashed: a kernel's timings start; "
                 "green: Spense wgmma.sp, black: cuBLAS)", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "clocks.png"), dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/clock_plot.py RESULTS_FOLDER")
    main(sys.argv[1])
