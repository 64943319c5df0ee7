"""Derive a GPU's mma.sp launch-config table from kernel-harness runs (benchmarks/mmasp_bulk_check.cu)
and linear_bench runs.

    python3 benchmarks/make_mmasp_cfg_table.py benchmarks/results/mmasp_bulk_2026-11-30/bulk_ab.txt \
        benchmarks/results/mmasp_bulk_2026-11-30/quick_c54974e/bulk_ab.txt \
        --capability 9.0 --out src/spense/runtime/mmasp_cfg_h200.json

Every timing line of the harness gives, for one (dtype, axis, N, K, dense ratio, M) cell and one
launch config (row tiles RT, warps), the register kernel's time with x in fragment order
(``reg_xf``: what the compiled engine runs).  For each cell the config with the lowest time wins, if
at least two configs were timed in the same file; where several files timed a cell, the later file
(a newer kernel) decides the whole cell.  Lines with the dependent launch (``pdl=1``) are left out.

A linear_bench log (its stdout, ``*.txt``: a ``# <device>, <date>, commit <sha>`` header and one ``cfg`` line per
launch config timed, ``cfg N=.. K=.. d=.. axis=c fp8=.. M=.. <column> RTxWARPS us``) gives each cell every config of the
column the compiled engine runs at that M: x_perm (``xp``; ``xhp`` on x's f16 operand for e4m3 weights) at M = 1 (the
default ``SPENSE_MMASP_XPERM``, :func:`spense.runtime.xops.x_perm_max_m`), the fragments (``xf``; ``xh``) above; where
that column was not timed (a layer with a column gather has no x_perm), the fragments.

A ``linear_bench.json`` among the inputs (benchmarks/linear_bench.py, run with ``--backends ...,mmasp`` and
its ``--cfgs`` sweep) gives each of its cells the config of the column the compiled engine runs: ``mmasp_xh``
(e4m3 weights on x's f16 operand, M <= 16) where the row exists, else ``mmasp_xf`` (x's fragments made before
the call); that row's ``config`` is already the fastest of the sweep.

An engine table among the inputs (``runtime/auto_table.json``, a ``mmasp_cfg_*.json``), put first, is the base: its
launch configs as they are, each replaced where a later file measured that cell (its own ``sources`` kept in its
entry); ``--dtypes fp8`` takes only the FP8 cells from the measurements (e.g. the H100's table: the built-in table's
configs with the FP8 cells of the 8B shapes measured again on today's kernels,
``benchmarks/results/wgsd_2026-12-05/av_63c76a2_h100_cfg_sweep``; then the 8B cells of the wider-CTA sweeps bk, bl,
bm over it).

``--set CELL=RTxWARPS`` (repeatable) then sets one cell by hand, e.g. to time a layer's launch config inside the
decode step (``SPENSE_MMASP_CFG``), where a sweep of the layer alone does not tell (docs/e2e.md v56):
``make_mmasp_cfg_table.py src/spense/runtime/mmasp_cfg_h100.json --capability 9.0 --set
fp8,cols,24576,4096,0.25,8=1x16 --out /tmp/cfg.json``; the table's ``sources`` record each.

The output (``{"device", "capability", "date", "sources", "command", "mmasp_cfg"}``, keys
``"dtype,axis,N,K,dense_ratio,M"``) is read by ``spense.runtime.autotune.table_for`` on the GPU it
names, for the launch config only; the backend choice still follows the runtime's rules.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

LINE = re.compile(r"N=(\d+) K=(\d+) d=([\d.]+) axis=([cr]) fp8=([01]) M=(\d+) RT=(\d+) warps=(\d+) "
                  r"stages=\d+ xfrag=\d(?: pdl=(\d))?")
REG_XF = re.compile(r"\| reg_xf ([\d.]+) us")
HEADER = re.compile(r"^# (.+?), (\d{4}-\d\d-\d\dT[\d:]+Z), commit ([^\s,]+)")
CFG = re.compile(r"^cfg N=(\d+) K=(\d+) d=([\d.]+) axis=([cr]) fp8=([01]) M=(\d+) (xp|xhp|xf|xh) (\d+)x(\d+)(?:x\d+)* "
                 r"([\d.]+) us")
XPERM_MAX_M = 1  # spense.runtime.xops.x_perm_max_m()'s default
CELL = re.compile(r"^(bf16|fp8),(cols|rows),(\d+),(\d+),(\d*\.?\d+),(\d+)=(\d+)x(\d+)$")


def header(line: str) -> dict | None:
    """A harness header line (``# <device>, <date>, commit <sha>``) as ``{device, date, commit}``, else None."""
    h = HEADER.match(line)
    return {"device": h.group(1), "date": h.group(2), "commit": h.group(3)} if h else None


def engine_columns(fp8: bool, M: int) -> tuple[str, str]:
    """The column the compiled engine runs at M, and the one taken where that was not timed (the module doc)."""
    frag = "xh" if fp8 else "xf"
    return ((("xhp" if fp8 else "xp"), frag) if M <= XPERM_MAX_M else (frag, frag))


def parse_log(text: str) -> tuple[dict, dict[str, dict[tuple[int, int], float]]]:
    """``(header, cells)`` of a linear_bench log: per cell key, ``{(RT, warps): µs}`` of the engine's column."""
    head: dict = {}
    seen: dict[tuple[str, str], dict[tuple[int, int], float]] = {}
    for line in text.splitlines():
        if (h := header(line)) is not None:
            head = h
            continue
        m = CFG.match(line)
        if not m:
            continue
        N, K, d, axis, fp8, M, col, RT, warps, us = m.groups()
        key = f"{'fp8' if fp8 == '1' else 'bf16'},{'cols' if axis == 'c' else 'rows'},{N},{K},{float(d)},{M}"
        cell = seen.setdefault((key, col), {})
        cfg = (int(RT), int(warps))
        cell[cfg] = min(cell.get(cfg, float("inf")), float(us))
    cells: dict[str, dict[tuple[int, int], float]] = {}
    for key in {k for k, _ in seen}:
        want, fallback = engine_columns(key.startswith("fp8"), int(key.rsplit(",", 1)[1]))
        cells[key] = seen.get((key, want)) or seen.get((key, fallback)) or {}
    return head, {k: v for k, v in cells.items() if v}


def parse(text: str) -> tuple[dict, dict[str, dict[tuple[int, int], float]]]:
    """``(header, cells)``: the file's device / date / commit and, per cell key, ``{(RT, warps): µs}``
    (the best of repeated lines)."""
    head: dict = {}
    cells: dict[str, dict[tuple[int, int], float]] = {}
    for line in text.splitlines():
        if (h := header(line)) is not None:
            head = h
            continue
        m, t = LINE.search(line), REG_XF.search(line)
        if not m or not t or m.group(9) == "1":
            continue
        N, K, d, axis, fp8, M, RT, warps = m.groups()[:8]
        key = f"{'fp8' if fp8 == '1' else 'bf16'},{'cols' if axis == 'c' else 'rows'},{N},{K},{float(d)},{M}"
        cfg = (int(RT), int(warps))
        cell = cells.setdefault(key, {})
        cell[cfg] = min(cell.get(cfg, float("inf")), float(t.group(1)))
    return head, cells


def parse_bench(text: str) -> tuple[dict, dict[str, dict[tuple[int, int], float]]]:
    """``(header, cells)`` of a linear_bench.json: per cell key the one config of its engine column (module
    doc), ``{(RT, warps): µs}``."""
    rows = json.loads(text)
    head: dict = {}
    cells: dict[str, dict[tuple[int, int], float]] = {}
    picked: dict[str, str] = {}
    for r in rows:
        if r.get("backend") not in ("mmasp_xh", "mmasp_xf") or not r.get("config"):
            continue
        head = {"device": r["device"], "date": r["date"], "commit": r["commit"]}
        key = f"{r['dtype']},{r['axis']},{r['N']},{r['K']},{float(r['dense_ratio'])},{r['M']}"
        if picked.get(key) == "mmasp_xh" and r["backend"] == "mmasp_xf":
            continue
        picked[key] = r["backend"]
        cells[key] = {tuple(int(v) for v in r["config"][:2]): r["ms"] * 1e3}
    return head, cells


def parse_table(text: str) -> tuple[dict, dict[str, list[int]]] | None:
    """``(header, cells)`` of an engine table (``runtime/auto_table.json``, a ``mmasp_cfg_*.json``: a JSON object
    with ``mmasp_cfg``): its launch configs as they are, the header with the table's own ``sources`` (so that a table
    made over it keeps where its base came from); None for any other text."""
    try:
        t = json.loads(text)
    except ValueError:
        return None
    if not isinstance(t, dict) or "mmasp_cfg" not in t:
        return None
    return ({"device": t.get("device"), "date": str(t.get("date", "")), "commit": t.get("commit"),
             "sources": t.get("sources")}, t["mmasp_cfg"])


def make_table(files: list[tuple[str, str]], capability: tuple[int, int], dtypes: set[str] | None = None) -> dict:
    """``files``: (path, text) in order; later files replace earlier ones cell by cell.  An engine table among them
    (:func:`parse_table`) gives its cells as they are (as the oldest file: the base that measurements update);
    ``dtypes`` (e.g. ``{"fp8"}``): the cells the measurement files give of these dtypes only."""
    chosen: dict[str, list[int]] = {}
    sources, device = [], None
    for path, text in files:
        base = parse_table(text) if path.endswith(".json") else None
        if base is not None:
            head, cfgs = base
            head = {k: v for k, v in head.items() if v}
            n, picked = len(cfgs), {k: list(v) for k, v in cfgs.items()}
        else:
            bench = path.endswith(".json")
            log = not bench and any(line.startswith("cfg ") for line in text.splitlines())
            head, cells = parse_bench(text) if bench else parse_log(text) if log else parse(text)
            if dtypes is not None:
                cells = {k: v for k, v in cells.items() if k.split(",", 1)[0] in dtypes}
            n, picked = len(cells), {k: list(min(c, key=c.get)) for k, c in cells.items() if len(c) >= 2 or bench}
        if head.get("device"):
            if device and head["device"] != device:
                raise ValueError(f"{path}: measured on {head['device']}, the others on {device}")
            device = head["device"]
        sources.append({"path": path, **head, "cells": n})
        chosen.update(picked)
    if device is None:
        raise ValueError("no harness header (# <device>, <date>, commit <sha>) in the inputs")
    return {"device": device, "capability": list(capability), "date": max(s.get("date", "") for s in sources),
            "sources": sources, "mmasp_cfg": dict(sorted(chosen.items()))}


def set_cells(table: dict, assignments: list[str]) -> dict:
    """``table`` with each ``"dtype,axis,N,K,dense_ratio,M=RTxWARPS"`` of ``assignments`` set as that cell's launch
    config (the key written as the engine writes it: the ratio as a float) and recorded in its ``sources``."""
    for a in assignments:
        m = CELL.match(a.replace(" ", ""))
        if not m:
            raise ValueError(f"--set {a!r}: expected dtype,axis,N,K,dense_ratio,M=RTxWARPS, e.g. "
                             "fp8,cols,24576,4096,0.25,8=1x16")
        dt, axis, N, K, d, M, RT, warps = m.groups()
        if RT not in ("1", "2") or not 1 <= int(warps) <= 16:
            raise ValueError(f"--set {a!r}: the register kernel takes 1 or 2 row tiles and 1-16 warps")
        key = f"{dt},{axis},{int(N)},{int(K)},{float(d)},{int(M)}"
        table["mmasp_cfg"][key] = [int(RT), int(warps)]
        table["sources"].append({"set": key, "cfg": [int(RT), int(warps)]})
    table["mmasp_cfg"] = dict(sorted(table["mmasp_cfg"].items()))
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="bulk_ab.txt, linear_bench logs / .json, or an engine table as the "
                    "base, oldest first")
    ap.add_argument("--capability", required=True, help="the GPU's compute capability, e.g. 9.0")
    ap.add_argument("--out", help="write the table here (atomically); else print it")
    ap.add_argument("--dtypes", help="take only these dtypes' cells from the measurements, e.g. fp8 (an engine "
                    "table among the inputs keeps its others)")
    ap.add_argument("--set", action="append", default=[], metavar="CELL=RTxWARPS",
                    help="set one cell's launch config by hand, e.g. fp8,cols,24576,4096,0.25,8=1x16 (repeatable)")
    a = ap.parse_args(argv)
    try:
        cc = tuple(int(v) for v in a.capability.split("."))
        files = [(os.path.relpath(p), open(p).read()) for p in a.files]
        table = set_cells(make_table(files, cc, set(a.dtypes.split(",")) if a.dtypes else None), a.set)
    except (OSError, ValueError) as e:
        print(f"make_mmasp_cfg_table: {e}", file=sys.stderr)
        return 2
    table["command"] = "python3 benchmarks/make_mmasp_cfg_table.py " + " ".join(argv or sys.argv[1:])
    text = json.dumps(table, indent=1) + "\n"
    if not a.out:
        print(text, end="")
        return 0
    tmp = f"{a.out}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.out)
    print(f"{len(table['mmasp_cfg'])} cells -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
