"""Dense-region strategies on a real model over several calibration seeds (a measurement, not a test).

Usage:
    python scripts/strategy_seeds.py [--model models/default] [--seeds 0,1,2] [--nsamples 32]
        [--seqlen 512] [--eval-windows 64] [--json out/strategy_seeds.json]

For every seed (calibration windows and random regions both follow it) and every method below, the
script prunes a fresh copy of the model in memory and records

* ``loss``: the sum over layers of the reconstruction loss ``‖(W - Ŵ)X‖²/n`` that the pipeline
  reports (true-sequential, so each method sees its own pruned inputs), and ``loss_vs_24``: that
  sum divided by the pure 2:4 SparseGPT sum of the same seed;
* ``perplexity`` on the first ``--eval-windows`` non-overlapping windows of WikiText-2 test.

It prints mean ± std over seeds, so a difference between strategies can be read against the
seed-to-seed spread.  ``salience-cols`` runs with both column rankings (``obs`` and ``act``).
"""

from __future__ import annotations

import argparse
import json
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
    ("spense random cols", dict(method="spense", strategy="random", axis="cols")),
    ("spense random rows", dict(method="spense", strategy="random", axis="rows")),
    ("spense first cols", dict(method="spense", strategy="first", axis="cols")),
]


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


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
    a = ap.parse_args()

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
    runs = []
    for seed in seeds:
        calib_w = data.calibration_windows(calib_ids, a.nsamples, seqlen, seed)
        base_loss = None
        for label, kw in METHODS:
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

    lines = [f"| method | perplexity (mean ± std, {len(seeds)} seeds) | layer loss vs 2:4 (mean ± std) |",
             "|---|---|---|", f"| dense | {dense_ppl:.3f} | - |"]
    for label, _ in METHODS:
        rs = [r for r in runs if r["method"] == label]
        pm, ps = _mean_std([r["perplexity"] for r in rs])
        lm, ls = _mean_std([r["loss_vs_24"] for r in rs])
        lines.append(f"| {label} | {pm:.3f} ± {ps:.3f} | {lm:.3f} ± {ls:.3f} |")
    print("\n".join(lines))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({
            "model": a.model, "seeds": seeds, "nsamples": a.nsamples, "seqlen": seqlen,
            "eval_windows": int(eval_w.shape[0]), "dense_ratio": a.dense_ratio, "dense_perplexity": dense_ppl,
            "torch": torch.__version__, "runs": runs, "table": lines}, indent=2) + "\n")


if __name__ == "__main__":
    main()
