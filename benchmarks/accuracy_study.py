"""The accuracy study: perplexity against weight density for every method family on one model.

One run prunes the model once per configuration and evaluates each result on WikiText-2 test (all
windows) and on a second text that is not WikiText.  Configurations (budgets = dense share of the
block linears' weights, default 0.1 / 0.25 / 0.5):

* dense; magnitude, Wanda and SparseGPT at 2:4 (SparseGPT also with ``sequential=block``, the
  protocol of llm-compressor); unstructured SparseGPT at the density of each budget;
* Spense at each budget with loss-rows, salience-cols, first cols, random rows and random cols
  (``--seeds`` seeds each);
* whole dense linears at each budget: the first k decoder layers, the last k, a module type
  (the subset of module types whose share is nearest the budget), linears chosen by measured
  sensitivity (``--dense-layers auto:B``);
* the dense-budget allocator at each budget (mixed axes, 0 % and 100 % allowed per linear).

Configurations run as jobs in ``--jobs`` worker processes (one GPU holds them all for a 135M
model); each finished row is written atomically to ``OUT/rows/<slug>.json`` so a killed run resumes.
At the end: ``OUT/study.json`` (all rows + environment), ``OUT/study.md`` (table with the share of
the SparseGPT → dense gap each row closes) and ``OUT/study.png`` (perplexity against density).

    python benchmarks/accuracy_study.py --model smollm2-135m --out benchmarks/results/study_smollm2 \
        --eval2 PATH_TO_SECOND_TEXT --device cuda --jobs 8
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BUDGETS = (0.1, 0.25, 0.5)
STRATEGIES = (("loss-rows", None), ("salience-cols", None), ("first", "cols"))


# --------------------------------------------------------------------------------------------------
# configurations
# --------------------------------------------------------------------------------------------------
def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", s.lower()).strip("-")


def _pc(**kw) -> dict:
    return {"method": "spense", "dense_ratio": 0.0, **kw}


def study_configs(budgets=BUDGETS, seeds: int = 3, whole_layers: bool = True, allocator: bool = True) -> list[dict]:
    """Every configuration of the study, as JSON-able dicts ``{name, family, budget, kind, ...}``."""
    rows: list[dict] = [{"name": "dense", "family": "dense", "budget": 1.0, "kind": "dense"}]
    for m in ("magnitude", "wanda", "sparsegpt"):
        rows.append({"name": f"{m} 2:4", "family": m, "budget": 0.0, "kind": "prune",
                     "cfg": _pc(method=m)})
    rows.append({"name": "sparsegpt 2:4 sequential=block", "family": "sparsegpt-block", "budget": 0.0,
                 "kind": "prune", "cfg": _pc(method="sparsegpt"), "sequential": "block"})
    for b in budgets:
        rows.append({"name": f"unstructured {b:g}", "family": "unstructured", "budget": b, "kind": "prune",
                     "cfg": _pc(method="unstructured", dense_ratio=b)})
        for strat, axis in STRATEGIES:
            rows.append({"name": f"spense {strat} {b:g}", "family": f"spense {strat}", "budget": b,
                         "kind": "prune", "cfg": _pc(dense_ratio=b, strategy=strat, axis=axis)})
        for axis, s in itertools.product(("rows", "cols"), range(seeds)):
            rows.append({"name": f"spense random {axis} {b:g} seed{s}", "family": f"spense random {axis}",
                         "budget": b, "kind": "prune",
                         "cfg": _pc(dense_ratio=b, strategy="random", axis=axis, seed=s)})
        if whole_layers:
            for where in ("first", "last", "type", "auto"):
                rows.append({"name": f"whole layers {where} {b:g}", "family": f"whole {where}", "budget": b,
                             "kind": "whole", "where": where, "cfg": _pc(method="sparsegpt")})
        if allocator:
            rows.append({"name": f"allocator {b:g}", "family": "allocator", "budget": b, "kind": "alloc",
                         "cfg": _pc(dense_ratio=b, strategy="salience-cols")})
    return rows


def whole_layer_spec(where: str, budget: float, n_layers: int, type_shares: dict[str, float]) -> str:
    """The ``--dense-layers`` SPEC of a whole-layer configuration at ``budget``.

    first/last: ``k = ⌊budget · n_layers⌋`` decoder layers (never above the budget); type: the subset of module types whose
    summed weight share is nearest ``budget``; auto: ``auto:budget``.
    """
    k = max(1, int(budget * n_layers + 1e-9))  # never above the budget
    if where == "first":
        return f"0-{k - 1}"
    if where == "last":
        return f"{n_layers - k}-{n_layers - 1}"
    if where == "auto":
        return f"auto:{budget:g}"
    names = sorted(type_shares)
    best = min((c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)),
               key=lambda c: abs(sum(type_shares[n] for n in c) - budget))
    return ",".join(best)


# --------------------------------------------------------------------------------------------------
# one worker: runs a list of configurations on one loaded model
# --------------------------------------------------------------------------------------------------
def _write_json(path: Path, obj) -> None:
    from spense.atomic import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def _type_shares(model) -> tuple[int, dict[str, float]]:
    from spense.hf import find_blocks, find_linears

    _, blocks = find_blocks(model)
    sizes: dict[str, int] = {}
    for b in blocks:
        for name, mod in find_linears(b).items():
            sizes[name] = sizes.get(name, 0) + mod.weight.numel()
    total = sum(sizes.values())
    return len(blocks), {n.split(".")[-1]: s / total for n, s in sizes.items()}


def _plan(model, windows, row: dict, dev, n_layers: int, shares: dict[str, float], curves: dict):
    """Per-linear configs (``plan``) of a whole-layer or allocator row, through the pipeline's own
    :func:`spense.sensitivity.build_plan` (the same code as ``spense prune --dense-layers`` /
    ``--budget-alloc greedy``); measured curves are shared between rows through ``curves``."""
    from spense.methods import PruneConfig
    from spense.sensitivity import build_plan

    base = PruneConfig(**row["cfg"])
    if row["kind"] == "whole":
        row["spec"] = whole_layer_spec(row["where"], row["budget"], n_layers, shares)
        plan, summary = build_plan(model, windows, base, dev, dense_layers=row["spec"], curves=curves)
    else:
        plan, summary = build_plan(model, windows, base, dev, budget_alloc="greedy", axes="mixed",
                                   curves=curves)
    row["plan_summary"] = {k: v for k, v in (summary or {}).items() if k != "choices"}
    row["plan_choices"] = (summary or {}).get("choices")
    return plan


def run_worker(args) -> None:
    import torch

    from spense import data
    from spense.evaluate import perplexity
    from spense.hf import load_model, resolve_device
    from spense.methods import PruneConfig
    from spense.models import resolve_model
    from spense.pipeline import linear_density, prune_loaded

    torch.set_num_threads(max(1, args.threads))
    dev = resolve_device(args.device)
    model_dir = resolve_model(args.model)
    rows = json.loads(Path(args.worker).read_text())
    tok = data.load_tokenizer(model_dir)
    dense = load_model(model_dir)
    bos = data.bos_id(tok)  # Gemma expects <bos> at the start of every window; SmolLM2 has none
    calib = data.calibration_windows(data.tokenize(tok, data.read_text(args.calib)), args.nsamples,
                                     args.seqlen, args.seed, bos=bos)
    evals = {"wikitext2": data.eval_windows(data.tokenize(tok, data.read_text(args.eval)), args.seqlen,
                                             args.max_eval_windows, bos=bos)}
    if args.eval2:
        evals["eval2"] = data.eval_windows(data.tokenize(tok, data.read_text(args.eval2)), args.seqlen,
                                           args.max_eval_windows, bos=bos)
    n_layers, shares = _type_shares(dense)
    curves: dict = {}  # measured sensitivity curves, keyed by build_plan, shared by this worker's rows
    out = Path(args.out) / "rows"
    for row in rows:
        path = out / f"{_slug(row['name'])}.json"
        if path.exists() or not claim(path.with_suffix(".claim")):
            continue
        t0 = time.perf_counter()
        import copy

        m = copy.deepcopy(dense)
        records = {}
        if row["kind"] != "dense":
            plan = _plan(m, calib, row, dev, n_layers, shares, curves) if row["kind"] in ("whole", "alloc") else None
            records = prune_loaded(m, calib, PruneConfig(**row["cfg"]), dev, progress=False, plan=plan,
                                   sequential=row.get("sequential", "true"))
        t_prune = time.perf_counter() - t0
        m.to(dev)
        res = {k: perplexity(m, w, dev, progress=False, batch_size=8) for k, w in evals.items()}
        m.to("cpu")
        dense_share = _dense_share(records)
        _write_json(path, {
            **row, "density": linear_density(m), "dense_share": dense_share,
            "layer_loss": sum(r["loss"] for r in records.values()) if records else 0.0,
            **{f"ppl_{k}": v["perplexity"] for k, v in res.items()},
            "eval_tokens": {k: v["tokens"] for k, v in res.items()},
            "prune_s": t_prune, "wall_s": time.perf_counter() - t0,
        })
        print(f"[{os.getpid()}] {row['name']}: " + ", ".join(f"{k} {v['perplexity']:.3f}" for k, v in res.items())
              + f" ({time.perf_counter() - t0:.1f} s)", flush=True)
        path.with_suffix(".claim").unlink(missing_ok=True)
        del m


def claim(path: Path) -> bool:
    """Take the row whose claim file is ``path`` for this process: True if it was free, or held by a
    process of this machine that is gone (a killed run).  Workers of several runs on one output
    folder (e.g. a second run started later on another GPU) so never do a row twice."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text() or 0)
                os.kill(pid, 0)
                return False  # a live worker holds it
            except ProcessLookupError:
                path.unlink(missing_ok=True)  # stale: its worker is gone
                continue
            except (ValueError, OSError):
                return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def _dense_share(records: dict) -> float:
    """Dense-region share of the pruned block linears' weights, from the layer records."""
    if not records:
        return 1.0
    num = den = 0.0
    for r in records.values():
        n, k = r["layout"]["shape"]
        num += r["dense_ratio"] * n * k
        den += n * k
    return num / den


# --------------------------------------------------------------------------------------------------
# driver, report, plot
# --------------------------------------------------------------------------------------------------
def gap_closed(ppl: float, ppl_24: float, ppl_dense: float) -> float:
    """Share of the SparseGPT 2:4 → dense perplexity gap a row closes: ``(p₂₄ − p) / (p₂₄ − p_dense)``."""
    return (ppl_24 - ppl) / (ppl_24 - ppl_dense)


def report(out: Path, meta: dict) -> dict:
    rows = [json.loads(p.read_text()) for p in sorted((out / "rows").glob("*.json"))]
    by = {r["name"]: r for r in rows}
    keys = [k for k in ("ppl_wikitext2", "ppl_eval2") if rows and k in rows[0]]
    if "dense" in by and "sparsegpt 2:4" in by:
        for r in rows:
            for k in keys:
                r[f"gap_{k[4:]}"] = gap_closed(r[k], by["sparsegpt 2:4"][k], by["dense"][k])
    payload = {**meta, "rows": rows}
    _write_json(out / "study.json", payload)
    lines = [f"# Accuracy study: {meta['model']}", "",
             f"{meta['date']}, commit {meta['commit']}, device {meta['device_name']}; calibration "
             f"{meta['nsamples']}x{meta['seqlen']} tokens of {meta['calib']} (seed {meta['seed']}); "
             f"evaluation: {', '.join(meta['evals'])}.", "", f"Command: `{meta['command']}`", "",
             "| configuration | budget | dense share | density | " + " | ".join(
                 f"ppl {k[4:]} | gap closed {k[4:]}" for k in keys) + " | prune s |",
             "|---|---|---|---|" + "---|---|" * len(keys) + "---|"]
    for r in sorted(rows, key=lambda r: (r["budget"], r["family"], r["name"])):
        cells = " | ".join(f"{r[k]:.3f} | {r.get('gap_' + k[4:], float('nan')):.3f}" for k in keys)
        lines.append(f"| {r['name']} | {r['budget']:g} | {r['dense_share']:.3f} | {r['density']:.3f} | "
                     f"{cells} | {r['prune_s']:.1f} |")
    (out / "study.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if rows and keys:
        plot(rows, out / "study.png", meta["model"], keys)
    return payload


def plot(rows: list[dict], path: Path, title: str, keys: list[str]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(7 * len(keys), 5), squeeze=False)
    fams = sorted({r["family"] for r in rows})
    colors = plt.cm.tab20(range(len(fams)))
    for ax, k in zip(axes[0], keys):
        # the y range stops a little above the worst 2:4 method that is not magnitude, whose
        # perplexity (in the thousands on SmolLM2) would squash every other curve; off-scale points are
        # drawn at the top edge and their values named in the legend
        base = [r[k] for r in rows if r["family"] in ("sparsegpt", "wanda", "sparsegpt-block")]
        top = 1.3 * max(base) if base else max(r[k] for r in rows)
        for f, color, marker in zip(fams, colors, itertools.cycle("osD^v<>ph*")):
            pts = sorted((r["density"], r[k]) for r in rows if r["family"] == f)
            if f.startswith("spense random"):  # seed mean per budget
                agg: dict[float, list] = {}
                for r in rows:
                    if r["family"] == f:
                        agg.setdefault(r["budget"], []).append((r["density"], r[k]))
                pts = sorted((sum(d for d, _ in v) / len(v), sum(p for _, p in v) / len(v)) for v in agg.values())
            xs, ys = zip(*pts)
            off = [y for y in ys if y > top]
            label = f + (f" (off scale: {', '.join(f'{y:.0f}' for y in off)})" if off else "")
            ax.plot(xs, [min(y, top) for y in ys], "-" if len(pts) > 1 else "", marker=marker, color=color,
                    label=label)
        ax.set_xlabel("weight density of the block linears")
        ax.set_ylabel(f"perplexity ({k[4:]})")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.9 * min(r[k] for r in rows), top=top * 1.05)
        ax.grid(alpha=0.3)
        ax.set_title(f"{title}: {k[4:]}")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--out", required=True)
    p.add_argument("--calib", default=None)
    p.add_argument("--eval", default=None)
    p.add_argument("--eval2", default=None, help="a second evaluation text that is not WikiText")
    p.add_argument("--nsamples", type=int, default=128)
    p.add_argument("--seqlen", type=int, default=512)
    p.add_argument("--max-eval-windows", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budgets", default=",".join(f"{b:g}" for b in BUDGETS))
    p.add_argument("--only", default=None, help="regex: run only configurations whose name matches")
    p.add_argument("--device", default="auto")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gpus", default=None, help="comma list of GPU indices the workers are spread over")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from OUT/rows")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from spense import data

    args.calib = args.calib or str(data.default_calib_path())
    args.eval = args.eval or str(data.default_eval_path())
    if args.worker:
        return run_worker(args)
    out = Path(args.out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report(out, _meta(args))
        return
    cfgs = study_configs(tuple(float(b) for b in args.budgets.split(",")), args.seeds)
    if args.only:
        cfgs = [c for c in cfgs if re.search(args.only, c["name"])]
    todo = [c for c in cfgs if not (out / "rows" / f"{_slug(c['name'])}.json").exists()]
    from spense.models import resolve_model

    resolve_model(args.model)  # a GGUF is converted once here, not by every worker at the same time
    procs = []
    gpus = args.gpus.split(",") if args.gpus else []
    parts = assign(todo, args.jobs)
    for j, part in enumerate(parts):
        wf = out / f"worker{os.getpid()}-{j}.json"
        # its own rows first, then the others' (work stealing through claim files; the allocator and
        # auto rows last, since their owner measures their sensitivity curves once)
        others = [r for q in parts if q is not part for r in q]
        _write_json(wf, part + sorted(others, key=lambda r: r["kind"] == "alloc" or r.get("where") == "auto"))
        cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--worker", str(wf)]
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": gpus[j % len(gpus)]} if gpus else {})}
        procs.append(subprocess.Popen(cmd, env=env))
    codes = [pr.wait() for pr in procs]
    meta = _meta(args)
    report(out, meta)
    if any(codes):
        sys.exit(f"{sum(1 for c in codes if c)} worker(s) failed; rerun the same command to resume")


def assign(rows: list[dict], jobs: int) -> list[list[dict]]:
    """Rows per worker: the allocator rows share one worker and the auto whole-layer rows another, so
    each set of sensitivity curves is measured once; the rest round-robin over the other workers."""
    groups = [[r for r in rows if r["kind"] == "alloc"], [r for r in rows if r.get("where") == "auto"]]
    groups = [g for g in groups if g]
    rest = [r for r in rows if r["kind"] != "alloc" and r.get("where") != "auto"]
    if jobs <= len(groups):
        return [p for p in [sum(groups, []) + rest] if p]
    free = jobs - len(groups)
    return [p for p in groups + [rest[j::free] for j in range(free)] if p]


def _meta(args) -> dict:
    import torch

    import spense
    from spense.provenance import current_commit, source_digest

    return {"model": args.model, "date": time.strftime("%Y-%m-%d"), "commit": current_commit(short=False),
            "src_digest": source_digest(),
            # --report-only away from the GPU that measured the rows: SPENSE_DEVICE_NAME names it
            "device_name": os.environ.get("SPENSE_DEVICE_NAME") or (
                torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"),
            "torch": torch.__version__, "spense": spense.__version__, "calib": Path(args.calib).name,
            "evals": ["wikitext2 test"] + (["eval2: " + Path(args.eval2).name] if args.eval2 else []),
            "nsamples": args.nsamples, "seqlen": args.seqlen, "seed": args.seed,
            "command": "python benchmarks/accuracy_study.py " + " ".join(sys.argv[1:])}


if __name__ == "__main__":
    main()
