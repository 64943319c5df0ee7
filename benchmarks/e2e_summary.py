"""One table from run_e2e.sh folders: ms per decode step per (model, variant, batch), the fastest row
of each across the folders, next to gpt-fast's step (anchor.txt) and to the weight floor, with
Spense's speed-up over the best dense row of the same dtype and over gpt-fast.

    python benchmarks/e2e_summary.py benchmarks/results/e2e_v8_2026-11-30/*/ [--out summary.md]

Rows are the JSON lines of ``rows*.jsonl`` in each folder; anchors the last JSON line of
``anchor.txt`` (``{"n_layer": .., "B1": {"step_ms": ..}, ..}``; without ``n_layer``, as shared/anchors'
script prints it, 36 layers), matched to rows by model label
``qwen3-8b[:n_layer]`` (plain ``qwen3-8b`` at all 36 layers), the fastest anchor of each batch kept.  Only rows timed like the anchor count
(compiled step, steps back to back: rows with ``step_sync_ms``), unless ``--all``; profiled rows never.
Rows run under non-default switches (``switches``) are labelled with them and kept apart (:func:`label`); rows
of different GPUs too (:func:`load`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(folders) -> tuple[list[dict], dict[tuple[str, int], float]]:
    """Every row and the fastest anchor per (model, batch).  Where the rows come from several GPUs (their
    ``device``), each model label gains `` @ <device>`` (and each folder's anchors its rows' device; a folder with no
    rows leaves its anchors' labels plain), so that nothing below compares or merges rows of different GPUs."""
    runs = []
    for d in map(Path, folders):
        rs = []
        for f in sorted(d.glob("rows*.jsonl")):
            for line in f.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    r["_run"] = d.parent.name if d.name.startswith("e2e") else d.name  # e2e, e2e_bf16, ...
                    rs.append(r)
        a = (d / "anchor.txt").read_text().strip() if (d / "anchor.txt").exists() else ""
        res = json.loads(a.splitlines()[-1]) if a else {}
        runs.append((rs, res))
    several = len({r.get("device") for rs, _ in runs for r in rs}) > 1
    rows, anchor = [], {}
    for rs, res in runs:
        if several:
            for r in rs:
                r["model"] = f"{r['model']} @ {r.get('device')}"
        at = f" @ {rs[0].get('device')}" if several and rs else ""
        rows += rs
        for k, v in res.items():
            if k.startswith("B") and k[1:].isdigit():
                # all 36 layers: the rows call it plain "qwen3-8b" (shared/anchors' script prints no n_layer: 36)
                n = res.get("n_layer", 36)
                key = ("qwen3-8b" if n == 36 else f"qwen3-8b[:{n}]") + at, int(k[1:])
                anchor[key] = min(anchor.get(key, float("inf")), v["step_ms"])
    return rows, anchor


def label(r: dict) -> str:
    """The row's variant, with the switches it ran under (``SPENSE_*`` variables, recorded by
    ``spense.engine.measure``), e.g. ``spense0.25 [MMASP_PF=1]``: rows under other switches are other
    setups, never merged with the defaults' row."""
    sw = dict(r.get("switches") or {})
    if r.get("max_autotune") and "SPENSE_MAX_AUTOTUNE" not in sw:  # rows written before measure recorded the switch
        sw["SPENSE_MAX_AUTOTUNE"] = "1"
    if not sw:
        return r["variant"]
    return r["variant"] + " [" + ",".join(f"{k.removeprefix('SPENSE_')}={v}" for k, v in sorted(sw.items())) + "]"


def best_rows(rows: list[dict], all_rows: bool = False) -> dict[tuple[str, str, int], dict]:
    """The fastest comparable row per (model, label, batch): compiled and timed back to back (unless
    ``all_rows``), never profiled (a profiled run carries the profiler's cost)."""
    best: dict[tuple, dict] = {}
    for r in rows:
        if "profile_ms" in r:
            continue
        if not all_rows and not (r.get("compiled") and "step_sync_ms" in r):
            continue
        k = (r["model"], label(r), r["batch"])
        if k not in best or r["step_ms"] < best[k]["step_ms"]:
            best[k] = r
    return best


def dense_of(best: dict, r: dict) -> dict | None:
    """The dense row of ``r``'s model, batch and precision (FP8 variants against FP8 dense): the one run under
    the same switches where there is one (a switch that changes both models is compared within itself), else
    the faster of the defaults' row and the defaults' under max-autotune (a dense setup a user could pick)."""
    dense = dict(r, variant="dense-fp8" if r["variant"].endswith("-fp8") else "dense")
    if r["variant"] == dense["variant"]:  # a dense row itself: against the defaults' (what its switches change)
        return best.get((r["model"], dense["variant"], r["batch"]))
    same = best.get((r["model"], label(dense), r["batch"]))
    if same is not None and (r.get("switches") or r.get("max_autotune")):
        return same
    picks = [best.get((r["model"], v, r["batch"])) for v in (dense["variant"], dense["variant"] + " [MAX_AUTOTUNE=1]")]
    picks = [d for d in picks if d is not None]
    return min(picks, key=lambda d: d["step_ms"]) if picks else None


def table(rows: list[dict], anchor: dict[tuple[str, int], float], all_rows: bool = False) -> str:
    best = best_rows(rows, all_rows)
    out = ["| model | variant | B | step ms | x floor | vs best dense | vs gpt-fast | run |",
           "|---|---|---|---|---|---|---|---|"]
    for (model, variant, B), r in sorted(best.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        dense = dense_of(best, r)
        # 3 decimals: at 2, 1.2487 would print as 1.25, the FP8 target
        vs_dense = f"{dense['step_ms'] / r['step_ms']:.3f}×" if dense and dense is not r else ""
        a = anchor.get((model, B))
        vs_anchor = f"{a / r['step_ms']:.2f}×" if a else ""
        out.append(f"| {model} | {variant} | {B} | {r['step_ms']:.3f} | {r['x_floor']:.2f} | {vs_dense} | "
                   f"{vs_anchor} | {r['_run']} |")
    for (model, B), a in sorted(anchor.items()):
        out.append(f"| {model} | gpt-fast | {B} | {a:.3f} |  |  | 1.00× | anchor |")
    return "\n".join(out) + "\n"


TARGETS = {"bf16": 1.3, "fp8": 1.25}  # issue 12's end-to-end speed-ups at B = 1 and 8, per precision


def plot(rows: list[dict], path: str, targets: dict[str, float] = TARGETS, prefer: dict | None = None) -> None:
    """One panel per model: each default-switch Spense / whole variant's speed-up over the dense model of
    its precision, grouped by batch, its value on the bar; BF16 variants in blues, FP8 ones in oranges and
    hatched, each precision's target as a dashed line of its first colour.  ``prefer`` (``{"SPENSE_X": "1"}``):
    a row run under exactly these switches in place of the defaults' row where there is one (a default changed
    since older runs), against :func:`dense_of`'s dense row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = best_rows(rows)
    ups = {}
    for (model, lab, B), r in best.items():
        if not r["variant"].startswith(("spense", "whole")) or lab != r["variant"]:
            continue
        if prefer:
            r = best.get((model, label(dict(r, switches=prefer)), B), r)
        d = dense_of(best, r)
        if d is not None:
            ups.setdefault(model, {}).setdefault(lab, {})[B] = d["step_ms"] / r["step_ms"]
    models = sorted(ups)
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        variants = sorted(ups[model], key=lambda v: (v.endswith("-fp8"), v))
        batches = sorted({B for v in variants for B in ups[model][v]})
        w = 0.8 / len(variants)
        shades = {False: iter(plt.cm.Blues([0.75, 0.5, 0.9, 0.35])), True: iter(plt.cm.Oranges([0.6, 0.8, 0.4, 0.95]))}
        for i, v in enumerate(variants):
            fp8 = v.endswith("-fp8")
            xs = [j + (i - (len(variants) - 1) / 2) * w for j, B in enumerate(batches) if B in ups[model][v]]
            ys = [ups[model][v][B] for B in batches if B in ups[model][v]]
            bars = ax.bar(xs, ys, w, label=v, color=next(shades[fp8], "grey"), hatch="//" if fp8 else None)
            ax.bar_label(bars, [f"{y:.3f}×" for y in ys], fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8)
        for dt in sorted({"fp8" if v.endswith("-fp8") else "bf16" for v in variants}):
            ax.axhline(targets[dt], color=(plt.cm.Oranges(0.6) if dt == "fp8" else plt.cm.Blues(0.75)), ls="--", lw=0.9,
                       label=f"{dt.upper()} target {targets[dt]}×")
        ax.set_xticks(range(len(batches)), [f"B = {B}" for B in batches])
        ax.set_ylabel("speed-up over dense of the same precision")
        ax.set_title(model)
        ax.legend(fontsize=7, ncol=2, loc="lower center")  # (below the bars' labels)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--all", action="store_true", help="also rows not compiled or timed one step at a time")
    ap.add_argument("--plot", help="also draw the speed-ups over dense here (PNG)")
    ap.add_argument("--prefer", default="", help="K=V,... (SPENSE_ prefix optional): plot rows run under these "
                    "switches where there are any (a default changed since older runs)")
    a = ap.parse_args(argv)
    prefer = {}
    for kv in filter(None, a.prefer.split(",")):
        k, eq, v = kv.partition("=")
        if not eq or not k:
            ap.error(f"--prefer: give K=V entries, got {kv!r}")
        prefer[k if k.startswith("SPENSE_") else "SPENSE_" + k] = v  # (the rows record the full names)
    rows, anchor = load(a.folders)
    t = table(rows, anchor, a.all)
    print(t, end="")
    if a.out:
        Path(a.out).write_text(t)
    if a.plot:
        plot(rows, a.plot, prefer=prefer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
