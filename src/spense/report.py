"""Tables (Markdown) and plots of the engine's end-to-end rows (:mod:`spense.engine.measure`).

Nothing in the engine imports this module; ``spense bench`` and ``benchmarks/e2e_report.py`` do.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from spense.atomic import atomic_write, atomic_write_bytes

COLUMNS = ("model", "variant", "dtype", "batch", "compiled", "prefill_ms", "step_ms", "floor_ms", "x_floor",
           "decode_tok_s", "speedup_vs_dense", "linear_bytes_ratio", "peak_mem_bytes", "tokens_identical")


def _fmt(v: Any) -> str:
    """A cell: ``-`` for a missing value, ``n/a`` for an unmeasured one (NaN: e.g. the weight floor on a CPU,
    which has no copy bandwidth measured)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    if isinstance(v, int) and v > 10**6:
        return f"{v / 1e9:.2f} GB"
    return str(v)


def markdown(rows: list[dict]) -> str:
    """One table of the rows, with device, date, commit and command above it."""
    if not rows:
        return "(no rows)\n"
    head = sorted({(r.get("device"), r.get("date"), r.get("commit"), r.get("torch")) for r in rows}, key=str)
    lines = [f"# End-to-end decode (engine): {', '.join(sorted({str(r['model']) for r in rows}))}", ""]
    lines += [f"* device {d}; date {t}; commit {c}; torch {tv}" for d, t, c, tv in head]
    runs = [r for r in rows if r.get("step_ms_runs")]
    if runs:  # spense bench --repeat (spense.engine.isolate.merge_rounds)
        n = sorted({len(r["step_ms_runs"]) for r in runs})
        sp = [r["step_ms_spread"] * 100 for r in runs if isinstance(r.get("step_ms_spread"), (int, float))]
        lines += [f"* step_ms: the median of {n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'} processes a variant"
                  + (f"; their spread (max - min) / median {min(sp):.1f}-{max(sp):.1f} %" if sp else "")]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    slow = slower_than_dense(rows)
    if slow:
        lines += ["", "Where the dense model of the same precision is the faster choice (speedup_vs_dense < 1):", ""]
        lines += [f"* {r['model']} {r['variant']} at batch {r['batch']}: {r['speedup_vs_dense']:.3f}x of dense"
                  for r in slow]
    return "\n".join(lines) + "\n"


def slower_than_dense(rows: list[dict]) -> list[dict]:
    """The rows whose step is slower than the dense model's of the same precision and batch in the same run
    (``speedup_vs_dense < 1``), e.g. Spense FP8 at batch 32 on the H200 (docs/e2e.md v39)."""
    return [r for r in rows if isinstance(r.get("speedup_vs_dense"), float) and r["speedup_vs_dense"] < 1.0]


def plot(rows: list[dict], path: str | Path) -> Path | None:
    """Step time per batch size, one line per variant, the weight floor dashed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # pragma: no cover
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for v in sorted({r["variant"] for r in rows}):
        rs = sorted((r for r in rows if r["variant"] == v), key=lambda r: r["batch"])
        ax.plot([r["batch"] for r in rs], [r["step_ms"] for r in rs], marker="o", label=v)
        ax.plot([r["batch"] for r in rs], [r["floor_ms"] for r in rs], ls="--", lw=0.8)
    ax.set_xlabel("batch")
    ax.set_ylabel("decode step ms (dashed: weight floor)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)


def write(rows: list[dict], out: str | Path, name: str) -> dict[str, Path]:
    """``NAME.json``, ``NAME.md`` and ``NAME.png`` in ``out``, each written atomically (an interrupted
    write leaves the earlier file, never half of one)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "md": out / f"{name}.md"}
    atomic_write_bytes(paths["json"], (json.dumps(rows, indent=1, default=str) + "\n").encode("utf-8"))
    atomic_write_bytes(paths["md"], markdown(rows).encode("utf-8"))
    png = plot(rows, out / f"{name}.png") if rows else None
    if png:
        paths["png"] = png
    return paths


def merge(json_paths: Iterable[str | Path], out: str | Path, name: str) -> dict[str, Path]:
    rows: list[dict] = []
    for p in json_paths:
        rows += json.loads(Path(p).read_text())
    return write(rows, out, name)
