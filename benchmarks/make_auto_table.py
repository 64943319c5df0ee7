"""Derive the runtime's ``auto`` backend table from linear_bench results.

    python3 benchmarks/make_auto_table.py benchmarks/results/linear_bench_2026-11-24_v2.json \
        [benchmarks/results/linear_bench_2026-11-24_v3sep.json ...] \
        [--out src/spense/runtime/auto_table.json] [--margin 1.02]

Several result JSONs are merged (e.g. the fused-shape run plus a run of the model's separate k/v and
gate/up projections): their rows are concatenated in the order given, and where two files measured the
same (dtype, axis, N, K, dense ratio, M) cell, the later run (row ``date``/``command``) replaces the whole
cell, so every cell is decided on the timings of one run (dense baseline and ours side by side).

For every measured (dtype, axis, N, K, dense ratio, M) it keeps the fastest of our backends
(``mmasp``, ``triton``, ``cusparselt``) if it beats the runtime's dense fallback by more than
``--margin`` (default 2 %, about the run-to-run spread of the timings); ties and losses -> ``dense``.
The dense fallback is what ``SpenseLinear`` actually runs when it falls back: ``F.linear`` on the
materialised bf16 weight, i.e. the ``dense_bf16`` row (cuBLAS; for bf16 in runs before the thirty-first stop,
whose ``dense`` row was cuBLAS and which have no ``dense_bf16`` row, the ``dense`` row).  Neither the FP8 dense
baseline ``Fp8Linear`` nor the dense BF16 streaming kernel (``spense.runtime.dense``, in the bf16 ``dense`` row since)
is a fallback of ``SpenseLinear``.  The
measured best mmasp launch config (row tiles, warps) of every cell is stored too (``mmasp_cfg``), so
``auto`` launches the kernel as it was measured.

Keys: ``"dtype,axis,N,K,dense_ratio,M"`` (dense_ratio as written by Python's ``float``), looked up by
``spense.runtime.autotune.lookup`` at the nearest measured ratio and a conservatively chosen measured M.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

OURS = ("mmasp", "triton", "cusparselt")


def load_rows(paths: list[str]) -> list[dict]:
    """Rows of all files, in order (later files override earlier ones cell by cell in make_table)."""
    rows = []
    for p in paths:
        d = json.load(open(p))
        rows += d["rows"] if isinstance(d, dict) else d
    return rows


def source_info(paths: list[str]) -> list[dict]:
    """Per input file: path (relative to the repo), device, commit, date, number of rows."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = []
    for p in paths:
        d = json.load(open(p))
        rs = d["rows"] if isinstance(d, dict) else d
        r0 = rs[0] if rs else {}
        out.append({"path": os.path.relpath(os.path.abspath(p), root), "device": r0.get("device"),
                    "commit": r0.get("commit"), "date": r0.get("date"), "rows": len(rs)})
    return out


def key_of(r: dict) -> str:
    return f"{r['dtype']},{r['axis']},{r['N']},{r['K']},{float(r['dense_ratio'])},{r['M']}"


def make_table(rows: list[dict], margin: float = 1.02) -> tuple[dict, dict, dict]:
    """-> (choice, mmasp_cfg, stats): choice[key] = backend, mmasp_cfg[key] = [RT, warps]."""
    cells: dict[str, dict[str, dict]] = {}
    run_of: dict[str, tuple] = {}
    for r in rows:
        k, run = key_of(r), (r.get("date"), r.get("command"))
        if run_of.get(k, run) != run:  # a later run measured this cell again: it replaces the whole cell
            cells[k] = {}
        run_of[k] = run
        cells.setdefault(k, {})[r["backend"]] = r
    choice, cfg = {}, {}
    stats = {"cells": 0, "dense": 0}
    for k in sorted(cells, key=lambda s: (s.split(",")[:2], [float(v) for v in s.split(",")[2:]])):
        c = cells[k]
        dt = k.split(",")[0]
        base = c.get("dense_bf16") or (None if dt == "fp8" else c.get("dense"))  # cuBLAS (module doc)
        if base is None:
            continue
        stats["cells"] += 1
        ours = [c[b] for b in OURS if b in c]
        best = min(ours, key=lambda r: r["ms"]) if ours else None
        if "mmasp" in c and c["mmasp"].get("config"):
            cfg[k] = list(c["mmasp"]["config"])
        if best is not None and base["ms"] / best["ms"] > margin:
            choice[k] = best["backend"]
        else:
            choice[k] = "dense"
            stats["dense"] += 1
    return choice, cfg, stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="linear_bench result JSON(s)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "src", "spense", "runtime",
                                                  "auto_table.json"))
    ap.add_argument("--margin", type=float, default=1.02)
    a = ap.parse_args(argv)
    rows = load_rows(a.json)
    if not rows:
        sys.exit("no rows")
    choice, cfg, stats = make_table(rows, a.margin)
    src = source_info(a.json)

    def joined(k):
        vals = []
        for s in src:
            if s[k] and s[k] not in vals:
                vals.append(s[k])
        return " + ".join(vals)

    out = {
        "device": joined("device"), "commit": joined("commit"), "date": joined("date"),
        "source": [s["path"] for s in src], "sources": src,
        "rule": f"fastest of {'/'.join(OURS)} if > {a.margin}x the runtime's dense fallback "
                f"(bf16: dense; fp8: dense_bf16), else dense",
        "command": "python3 benchmarks/make_auto_table.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "choice": choice, "mmasp_cfg": cfg,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=0)
        f.write("\n")
    by = {}
    for v in choice.values():
        by[v] = by.get(v, 0) + 1
    print(f"{stats['cells']} cells -> {by} ({a.out})")


if __name__ == "__main__":
    main()
