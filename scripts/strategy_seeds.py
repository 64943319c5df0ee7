"""Dense-region strategies on a real model over several calibration seeds (a measurement, not a test).

Usage:
    python scripts/strategy_seeds.py [--model models/default] [--seeds 0,1,2] [--nsamples 32]
        [--seqlen 512] [--eval-windows 64] [--json out/strategy_seeds.json] [--plot out/strategies.png]
    python scripts/strategy_seeds.py --from-log a.log[,b.log] --json ... --plot ...
        (table, JSON and plot again from finished runs' printed logs of the same settings, without
        pruning; a (seed, method) present in several logs must agree)

For every seed (calibration windows and random regions both follow it) and every method below, the
script prunes a fresh copy of the model in memory and records

* ``loss``: the sum over layers of the reconstruction loss ``‖(W - Ŵ)X‖²/n`` that the pipeline
  reports (true-sequential, so each method sees its own pruned inputs), and ``loss_vs_24``: that
  sum divided by the pure 2:4 SparseGPT sum of the same seed;
* ``perplexity`` on the first ``--eval-windows`` non-overlapping windows of WikiText-2 test.

It prints mean ± std over seeds, so a difference between strategies can be read against the
seed-to-seed spread.  ``salience-cols`` runs with every column ranking (``obs``, ``act``,
``obs-col``).  ``--methods`` runs a subset (by label; ``sparsegpt 2:4`` always runs first, it is the
loss reference).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

import torch

from spense import data
from spense.evaluate import perplexity
from spense.methods import PruneConfig
from spense.pipeline import clip_seqlen, fresh_copy, load_model, prune_loaded

METHODS = [
    ("sparsegpt 2:4", dict(method="sparsegpt", dense_ratio=0.0)),
    ("unstructured 62.5%", dict(method="unstructured", dense_ratio=0.25)),
    ("spense loss-rows", dict(method="spense", strategy="loss-rows")),
    ("spense salience-cols (obs)", dict(method="spense", strategy="salience-cols", salience="obs")),
    ("spense salience-cols (act)", dict(method="spense", strategy="salience-cols", salience="act")),
    ("spense salience-cols (obs-col)", dict(method="spense", strategy="salience-cols", salience="obs-col")),
    ("spense salience-cols (obs-col) 64-col blocks",
     dict(method="spense", strategy="salience-cols", salience="obs-col", col_blocks=True)),
    ("spense random cols", dict(method="spense", strategy="random", axis="cols")),
    ("spense random 64-col blocks", dict(method="spense", strategy="random", axis="cols", col_blocks=True)),
    ("spense random rows", dict(method="spense", strategy="random", axis="rows")),
    ("spense first cols", dict(method="spense", strategy="first", axis="cols")),
]


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


LINE = re.compile(r"^seed (\d+) (.+?)\s+loss\s+(\S+) \((\S+) of 2:4\) ppl\s+(\S+)\s+(\S+) s$")


def parse_log(text: str) -> tuple[float, list[dict]]:
    """``(dense perplexity, runs)`` from the lines this script prints (printed precision)."""
    dense = re.search(r"^dense perplexity (\S+)", text, re.M)
    if dense is None:
        raise SystemExit("no 'dense perplexity' line in the log")
    runs = [{"seed": int(m[1]), "method": m[2], "loss": float(m[3]), "loss_vs_24": float(m[4]),
             "perplexity": float(m[5]), "seconds": float(m[6])}
            for m in (LINE.match(ln) for ln in text.splitlines()) if m]
    return float(dense[1]), runs


def table(dense_ppl: float, runs: list[dict]) -> list[str]:
    nseeds = len({r["seed"] for r in runs})
    lines = [f"| method | perplexity (mean ± std, {nseeds} seeds) | layer loss vs 2:4 (mean ± std) |",
             "|---|---|---|", f"| dense | {dense_ppl:.3f} | - |"]
    for label, _ in METHODS:
        rs = [r for r in runs if r["method"] == label]
        if not rs:
            continue
        pm, ps = _mean_std([r["perplexity"] for r in rs])
        lm, ls = _mean_std([r["loss_vs_24"] for r in rs])
        lines.append(f"| {label} | {pm:.3f} ± {ps:.3f} | {lm:.3f} ± {ls:.3f} |")
    return lines


def plot(dense_ppl: float, runs: list[dict], path: str, title: str) -> None:
    """Two panels per method: layer loss vs 2:4 and perplexity, one dot per seed plus the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [lb for lb, _ in METHODS if any(r["method"] == lb for r in runs)]
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, key, name in ((axs[0], "loss_vs_24", "summed layer loss / pure 2:4 SparseGPT"),
                          (axs[1], "perplexity", "WikiText-2 test perplexity")):
        for i, lb in enumerate(labels):
            ys = [r[key] for r in runs if r["method"] == lb]
            ax.plot([i] * len(ys), ys, "o", color="C0", alpha=0.5, ms=4)
            ax.plot([i - 0.25, i + 0.25], [statistics.fmean(ys)] * 2, color="C3", lw=2)
        if key == "perplexity":
            ax.axhline(dense_ppl, color="k", ls="--", lw=0.8, label="dense")
            ax.legend(fontsize=8)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(name)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(data.default_model_path()))
    ap.add_argument("--calib", default=None)
    ap.add_argument("--text", default=None)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--nsamples", type=int, default=32)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--dense-ratio", type=float, default=0.25)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="PNG: per-method layer loss and perplexity, one dot per seed")
    ap.add_argument("--from-log", default=None, help="rebuild table/JSON/plot from this script's printed logs "
                    "(comma-separated)")
    ap.add_argument("--methods", default=None, help="comma-separated subset of the method labels")
    a = ap.parse_args()
    if a.from_log:
        dense_ppl, runs = None, {}
        for log in a.from_log.split(","):
            dp, rs = parse_log(Path(log).read_text())
            if dense_ppl is not None and dp != dense_ppl:
                raise SystemExit(f"{log}: dense perplexity {dp} differs from {dense_ppl}: other settings")
            dense_ppl = dp
            for r in rs:
                key = (r["seed"], r["method"])
                if key in runs and (runs[key]["loss"], runs[key]["perplexity"]) != (r["loss"], r["perplexity"]):
                    raise SystemExit(f"{log}: {key} disagrees with an earlier log")
                runs.setdefault(key, r)
        runs = sorted(runs.values(), key=lambda r: (r["seed"], [lb for lb, _ in METHODS].index(r["method"])))
        finish(a, dense_ppl, runs, None, None, source=a.from_log)
        return

    torch.set_grad_enabled(False)
    seeds = [int(s) for s in a.seeds.split(",")]
    model = load_model(a.model)
    tok = data.load_tokenizer(a.model)
    seqlen = clip_seqlen(model.config, a.seqlen)
    calib_ids = data.tokenize(tok, data.read_text(a.calib or data.default_calib_path()))
    eval_w = data.eval_windows(data.tokenize(tok, data.read_text(a.text or data.default_eval_path())), seqlen,
                               a.eval_windows)
    dense_ppl = perplexity(model, eval_w, "cpu", progress=False)["perplexity"]
    print(f"dense perplexity {dense_ppl:.3f} ({eval_w.shape[0]}x{seqlen} tokens)")
    methods = METHODS
    if a.methods:
        want = set(a.methods.split(",")) | {METHODS[0][0]}
        unknown = want - {lb for lb, _ in METHODS}
        if unknown:
            raise SystemExit(f"unknown method label(s): {', '.join(sorted(unknown))}")
        methods = [(lb, kw) for lb, kw in METHODS if lb in want]
    runs = []
    for seed in seeds:
        calib_w = data.calibration_windows(calib_ids, a.nsamples, seqlen, seed)
        base_loss = None
        for label, kw in methods:
            kw = dict(kw)
            if kw["method"] == "spense":
                kw["dense_ratio"] = a.dense_ratio
            cfg = PruneConfig(seed=seed, **kw)
            t0 = time.perf_counter()
            m = fresh_copy(model)
            rec = prune_loaded(m, calib_w, cfg, "cpu", progress=False)
            loss = sum(r["loss"] for r in rec.values())
            base_loss = loss if base_loss is None else base_loss
            ppl = perplexity(m, eval_w, "cpu", progress=False)["perplexity"]
            runs.append({"seed": seed, "method": label, "loss": loss, "loss_vs_24": loss / base_loss,
                         "perplexity": ppl, "seconds": time.perf_counter() - t0})
            print(f"seed {seed} {label:28s} loss {loss:10.4g} ({loss / base_loss:.3f} of 2:4) "
                  f"ppl {ppl:8.3f}  {time.perf_counter() - t0:5.1f} s", flush=True)
            del m

    finish(a, dense_ppl, runs, seqlen, int(eval_w.shape[0]), source="run")


def finish(a, dense_ppl: float, runs: list[dict], seqlen, eval_windows, source: str) -> None:
    lines = table(dense_ppl, runs)
    print("\n".join(lines))
    seeds = sorted({r["seed"] for r in runs})
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({
            "model": os.path.relpath(a.model), "seeds": seeds, "nsamples": a.nsamples, "seqlen": seqlen if seqlen else a.seqlen,
            "eval_windows": eval_windows if eval_windows else a.eval_windows, "dense_ratio": a.dense_ratio,
            "dense_perplexity": dense_ppl, "torch": torch.__version__, "source": source, "runs": runs,
            "table": lines}, indent=2) + "\n")
    if a.plot:
        plot(dense_ppl, runs, a.plot, f"Dense-region strategies at {a.dense_ratio:.0%} dense, {Path(a.model).name}, "
             f"{len(seeds)} calibration seeds ({a.nsamples}x{seqlen or a.seqlen} tokens)")


if __name__ == "__main__":
    main()
