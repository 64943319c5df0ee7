"""``spense prune | pack | eval | validate | inspect | demo``: the pruning commands."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from spense import __version__
from spense.cli.app import _bars, _out_console, app, handle_errors
from spense.errors import InputError
from spense.models import BUILTIN_MODELS
from spense.registry import (METHODS, AxisChoice, MethodChoice, SalienceChoice, SequentialChoice,
                             StrategyChoice, default_dense_ratio)

# option enums: generated from spense.registry (the one vocabulary)
Method, Strategy, Axis, Salience, Sequential = MethodChoice, StrategyChoice, AxisChoice, SalienceChoice, \
    SequentialChoice
SEQUENTIAL_HELP = ("true: each layer group's Hessian comes from the block with the earlier groups already "
                   "pruned (true-sequential, default); block: every group's Hessian from one forward pass "
                   "of the unpruned block (llm-compressor's SparseGPT protocol, for side-by-side runs).")


def _load_checkpoint(path: Path, device, dtype=None):
    """io.load_checkpoint with the packed-checkpoint loader of the runtime registered."""
    import spense.runtime.checkpoint  # noqa: F401  (registers the "packed" kind with spense.io)
    from spense import io

    return io.load_checkpoint(path, device, dtype)


def _refuse_packed(model_dir: Path, cmd: str) -> None:
    """A packed checkpoint (``spense pack``) is refused as the model to prune: its linears are not stored as
    dense weights, so loading it as a Hugging Face model would give random ones."""
    from spense import io

    try:
        manifest = json.loads((Path(model_dir) / io.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(manifest, dict) and io.checkpoint_kind(manifest) == "packed":
        raise InputError(f"{model_dir} is a packed Spense checkpoint: {cmd} needs dense weights; give the source "
                         "model or a checkpoint written without --packed")


def _make_config(method: str, dense_ratio: Optional[float], strategy: str, axis: Optional[str], block: int,
                 blocksize: int, percdamp: float, seed: int, salience: str, col_blocks: bool = False,
                 tie_cols: bool = False):
    from spense.methods import PruneConfig

    if dense_ratio is None:
        dense_ratio = default_dense_ratio(method)
    cfg = PruneConfig(method=method, dense_ratio=dense_ratio, strategy=strategy, axis=axis, block=block,
                      blocksize=blocksize, percdamp=percdamp, seed=seed, salience=salience,
                      col_blocks=col_blocks, tie_cols=tie_cols)
    cfg.validate()
    return cfg


def default_allocation(method: str, budget_alloc: Optional[str], strategy, axis, axes: Optional[str],
                       dense_layers: Optional[str], col_blocks: bool = False,
                       dense_ratio: Optional[float] = None, tie_cols: bool = False) -> tuple[str, Optional[str]]:
    """``(budget_alloc, axes)`` of ``spense prune`` when ``--budget-alloc`` is not given: the
    dense-budget allocator with mixed axes for ``--method spense`` when nothing else says where the
    dense weights go (no --strategy, --axis, --axes, --dense-layers, --col-blocks or --tie-cols) and there is a
    budget to spread (0 < --dense-ratio < 1): it was the most accurate configuration of the SmolLM2-135M
    study (docs/results.md); else ``uniform``."""
    if budget_alloc is not None:
        return budget_alloc, axes
    placed = strategy is not None or axis is not None or axes is not None or dense_layers is not None
    no_budget = dense_ratio is not None and not 0.0 < dense_ratio < 1.0
    if method == "spense" and not placed and not col_blocks and not tie_cols and not no_budget:
        return "greedy", "mixed"
    return "uniform", axes


def _summary_rows(records: dict[str, dict]) -> dict[str, Any]:
    total = nnz = 0.0
    loss = 0.0
    for r in records.values():
        n, k = r["layout"]["shape"]
        total += n * k
        nnz += r["density"] * n * k
        loss += r["loss"]
    return {"layers": len(records), "density": nnz / total if total else 1.0, "loss": loss}

MODEL_HELP = ("Model: a local Hugging Face directory, a .gguf file or a built-in name ("
              + ", ".join(BUILTIN_MODELS) + ").")


# --------------------------------------------------------------------------------------------------
# prune
# --------------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def prune(
    model: str = typer.Argument(..., help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the pruned checkpoint."),
    method: Method = typer.Option(Method.spense, help="Pruning method: " + "; ".join(
                                  f"{n} ({s.help})" for n, s in METHODS.items()) + "."),
    dense_ratio: Optional[float] = typer.Option(None, "--dense-ratio", help="Fraction of each weight kept dense "
                                                "(spense, default 0.25); unstructured prunes to the same overall "
                                                "density (62.5 % at 0.25); must be 0 for sparsegpt/wanda/magnitude "
                                                "(their default)."),
    strategy: Optional[Strategy] = typer.Option(None, help="How spense picks the dense region of every linear "
                                                "(uniform --dense-ratio). Default: none given = the dense-budget "
                                                "allocator (see --budget-alloc)."),
    axis: Optional[Axis] = typer.Option(None, help="Dense axis for --strategy random/first (default cols); "
                                        "loss-rows implies rows, salience-cols implies cols."),
    salience: Salience = typer.Option(Salience.obs_col, help="salience-cols ranking: obs-col "
                                      "(‖W[:,j]‖²/[H⁻¹]_jj, OBS cost of the whole column), act (diag(H)·‖W[:,j]‖²) "
                                      "or obs (trial-pass OBS loss per column); measured in docs/results.md."),
    calib: Optional[Path] = typer.Option(None, help="Calibration text (.txt file or folder of them). "
                                         "Default: WikiText-2 valid.txt in the default data dir."),
    nsamples: int = typer.Option(128, help="Number of calibration windows."),
    seqlen: int = typer.Option(2048, help="Tokens per calibration window (clipped to the model's maximum)."),
    device: str = typer.Option("auto", help="Compute device: auto (cuda if available), cpu, cuda, cuda:N."),
    seed: int = typer.Option(0, help="Seed for calibration windows and random strategies."),
    block: int = typer.Option(64, help="Dense region granularity (rows/cols, multiple of 4)."),
    col_blocks: bool = typer.Option(False, "--col-blocks", help="Dense columns as whole aligned --block-wide "
                                    "blocks (salience-cols/random); with --block a multiple of 64 the GPU decode "
                                    "kernel reads its inputs without a gather (docs/results.md: accuracy cost)."),
    tie_cols: bool = typer.Option(False, "--tie-cols", help="salience-cols: linears that read the same input "
                                  "(q/k/v, gate/up) keep the same dense columns, ranked on their summed salience, "
                                  "so the engine runs each group as one Spense kernel (docs/results.md: accuracy "
                                  "cost)."),
    blocksize: int = typer.Option(128, help="OBS lazy-batch block size (columns)."),
    percdamp: float = typer.Option(0.01, help="Hessian damping as a fraction of mean(diag H)."),
    dtype: Optional[str] = typer.Option(None, help="Compute dtype of the blocks (float32 default; bfloat16 "
                                        "saves GPU memory). The output keeps the source dtype."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output checkpoint."),
    strict: bool = typer.Option(False, "--strict", help="Fail on linears that cannot be pruned instead of skipping them."),
    restart: bool = typer.Option(False, "--restart", help="Discard the resume state in OUT.partial/ and start over."),
    sequential: Sequential = typer.Option(Sequential.true, "--sequential", help=SEQUENTIAL_HELP),
    dense_layers: Optional[str] = typer.Option(None, "--dense-layers", help="Keep whole linears dense and prune "
                                               "the rest with --method: decoder-layer ranges (0-6), module names "
                                               "(down_proj, mlp.down_proj) and auto:FRACTION (whole linears chosen "
                                               "by measured sensitivity), comma-separated."),
    budget_alloc: Optional[str] = typer.Option(None, "--budget-alloc", help="uniform: every linear gets "
                                               "--dense-ratio; greedy: --dense-ratio of all linear weights spread "
                                               "over 2:4, row/column regions and whole dense linears by measured "
                                               "sensitivity (spense only). Default: greedy for --method spense "
                                               "without --strategy/--axis/--axes/--dense-layers/--col-blocks (the "
                                               "most accurate in docs/results.md), else uniform."),
    axes: Optional[str] = typer.Option(None, "--axes", help="rows or cols: every dense region on that axis; "
                                       "mixed: the axis of lower measured loss per linear (spense only)."),
    packed: bool = typer.Option(False, "--packed", help="Store the pruned weights packed (2:4 values + metadata + "
                                "dense region, see `spense pack`) instead of dense with zeros."),
    eval_text: Optional[Path] = typer.Option(None, "--eval", help="After pruning, report perplexity on this text."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Prune a model one-shot and write a Spense checkpoint (resumable: rerun after an interruption)."""
    from spense.models import resolve_model
    from spense.pipeline import prune_model

    t0 = time.perf_counter()
    budget_alloc, axes = default_allocation(method.value, budget_alloc, strategy, axis, axes, dense_layers,
                                            col_blocks, dense_ratio, tie_cols)
    model_dir = resolve_model(model)
    _refuse_packed(model_dir, "prune")
    if eval_text is not None:  # fail before the work, not after
        from spense import data

        data.read_text(eval_text)
    cfg = _make_config(method.value, dense_ratio, (strategy or Strategy.salience_cols).value,
                       axis.value if axis else None, block, blocksize, percdamp, seed, salience.value, col_blocks,
                       tie_cols)
    if packed:
        from spense.io import check_out_dir

        check_out_dir(model_dir, out, overwrite)  # fail before the work, not after
    # --packed: prune into OUT.unpacked (resumable under a fixed name), then pack into OUT
    target = out.with_name(out.name + ".unpacked") if packed else out
    manifest = prune_model(model_dir, target, cfg, calib, nsamples=nsamples, seqlen=seqlen, seed=seed,
                           device=device, strict=strict, overwrite=overwrite or packed, progress=_bars(quiet),
                           dtype=dtype, restart=restart, sequential=sequential.value,
                           dense_layers=dense_layers, budget_alloc=budget_alloc, axes=axes)
    if packed:
        import shutil

        from spense.runtime.checkpoint import pack_checkpoint

        pack_checkpoint(target, out, overwrite=overwrite)
        shutil.rmtree(target)
    s = _summary_rows(manifest["layers"])
    con = _out_console()
    con.print(
        f"[green]pruned[/green] {s['layers']} layers with {cfg.method}"
        + ((f" (dense budget {cfg.dense_ratio:g} spread by the allocator, {axes} axes)" if budget_alloc == "greedy"
            else f" ({cfg.strategy}, dense ratio {cfg.dense_ratio:g})") if cfg.method == "spense" else "")
        + f": density {s['density']:.4f}, total loss {s['loss']:.4g}, "
        f"wall time {time.perf_counter() - t0:.1f} s -> {out}"
    )
    if eval_text is not None:
        from spense import data
        from spense.evaluate import perplexity
        from spense.hf import clip_seqlen, resolve_device

        dev = resolve_device(device)
        model = _load_checkpoint(out, dev, "float32" if dev.type == "cpu" else None)
        tok = data.load_tokenizer(out)
        sl = clip_seqlen(model.config, seqlen)
        windows = data.eval_windows(data.tokenize(tok, data.read_text(eval_text)), sl, bos=data.bos_id(tok))
        res = perplexity(model, windows, dev, progress=_bars(quiet))
        con.print(f"perplexity {res['perplexity']:.3f} on {res['windows']} windows of {sl} tokens "
                  f"({eval_text})")


@app.command()
@handle_errors
def pack(
    src: Path = typer.Argument(..., help="Spense checkpoint written by `spense prune` (dense with zeros)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the packed checkpoint."),
    fp8: bool = typer.Option(False, "--fp8", help="Store values and dense region as float8_e4m3fn with "
                             "per-output-channel scales (lossy)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output checkpoint."),
) -> None:
    """Pack a checkpoint: 2:4 values + metadata + dense region, loadable without unpacking.

    `spense.runtime.load_packed(OUT)` builds the model with SpenseLinear layers from the stored packed
    tensors; at dense ratio 0 the pruned weights take 9/16 of their BF16 dense-with-zeros size."""
    from spense.io import validate_checkpoint
    from spense.runtime.checkpoint import pack_checkpoint

    t0 = time.perf_counter()
    dst = pack_checkpoint(src, out, fp8=fp8, overwrite=overwrite)
    m = validate_checkpoint(dst)

    def size(d: Path) -> int:
        return sum(f.stat().st_size for f in Path(d).glob("*.safetensors"))

    _out_console().print(
        f"[green]packed[/green] {len(m['layers'])} layers: {size(src) / 1e6:.2f} MB -> {size(dst) / 1e6:.2f} MB "
        f"in {time.perf_counter() - t0:.1f} s -> {dst}"
    )


# --------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------
def _load_any(model: str, device, dtype=None):
    """``(model, its directory)``: a Spense checkpoint (validated) or any model source, on ``device``."""
    from spense import io
    from spense.hf import load_model
    from spense.models import resolve_model

    if (Path(model) / io.MANIFEST).is_file():
        if io.validate_checkpoint(model).get("packed"):
            return _load_checkpoint(Path(model), device, dtype), Path(model)
    model_dir = resolve_model(model)
    return load_model(model_dir, dtype).to(device), model_dir


@app.command("eval")
@handle_errors
def eval_cmd(
    model: str = typer.Argument(..., help="A Spense checkpoint, or any model source: " + MODEL_HELP),
    text: Optional[Path] = typer.Option(None, help="Evaluation text (.txt or folder). Default: WikiText-2 test.txt."),
    seqlen: int = typer.Option(2048, help="Tokens per window (clipped to the model's maximum)."),
    max_windows: Optional[int] = typer.Option(None, "--max-windows", help="Evaluate at most this many windows."),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu, cuda, cuda:N."),
    dtype: Optional[str] = typer.Option(None, help="Evaluation dtype (default float32)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (perplexity, nll, tokens, windows, seconds)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Perplexity of a model on a text (non-overlapping windows, SparseGPT/Wanda protocol)."""
    from spense import data
    from spense.evaluate import perplexity, ppl_table
    from spense.hf import clip_seqlen, parse_dtype, resolve_device

    if seqlen < 2:  # a window predicts its tokens after the first
        raise InputError(f"--seqlen must be >= 2, got {seqlen}")
    dev = resolve_device(device)
    text_path = text if text is not None else data.default_eval_path()
    raw = data.read_text(text_path)
    lm, model_dir = _load_any(model, dev, parse_dtype(dtype))
    tok = data.load_tokenizer(model_dir)
    sl = clip_seqlen(lm.config, seqlen)
    windows = data.eval_windows(data.tokenize(tok, raw), sl, max_windows, bos=data.bos_id(tok))
    res = perplexity(lm, windows, dev, progress=_bars(quiet or as_json))
    res = {"model": str(model), "text": str(text_path), "seqlen": sl, **res}
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        _out_console().print(ppl_table([res], title="Perplexity"))


# --------------------------------------------------------------------------------------------------
# validate / inspect
# --------------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def validate(out_dir: Path = typer.Argument(..., help="Spense checkpoint directory.")) -> None:
    """Check a Spense checkpoint: manifest, SHA-256 of every tensor, and the 2:4 pattern of every layer."""
    from spense import io

    m = io.validate_checkpoint(out_dir)
    s = _summary_rows(m["layers"])
    _out_console().print(
        f"[green]OK[/green]: {s['layers']} layers, {len(m['tensors'])} tensors verified, "
        f"method {m.get('method', '?')}, density {s['density']:.4f} ({out_dir})"
    )


@app.command()
@handle_errors
def inspect(
    out_dir: Path = typer.Argument(..., help="Spense checkpoint directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the per-layer rows as JSON."),
) -> None:
    """Per-layer table of a Spense checkpoint (validates it first)."""
    from rich.table import Table

    from spense import io

    rows = io.summarize_checkpoint(out_dir)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(title=str(out_dir))
    for c in ("name", "shape", "axis", "dense n", "dense ratio", "density", "loss", "strategy"):
        t.add_column(c, justify="left" if c in ("name", "axis", "strategy") else "right")
    for r in rows:
        loss = r.get("loss")
        t.add_row(r["name"], "x".join(map(str, r["shape"])), r["axis"], str(r["n_dense"]),
                  f"{r['dense_ratio']:.3f}", f"{r['density']:.4f}",
                  "" if loss is None else f"{loss:.4g}", str(r.get("strategy") or r.get("method") or ""))
    _out_console().print(t)


# --------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------
def demo_methods(seed: int = 0, block: int = 64, quick: bool = False) -> list[tuple[str, Any]]:
    """The demo's methods, in order: ``(label, PruneConfig or None for the dense model)``; ``quick``:
    dense, SparseGPT 2:4 and Spense salience-cols (the rows of :data:`QUICK_METHODS`)."""
    from spense.methods import PruneConfig

    def c(**kw):
        return PruneConfig(seed=seed, block=block, **kw)

    rows = [
        ("dense", None),
        ("magnitude 2:4", c(method="magnitude", dense_ratio=0.0)),
        ("wanda 2:4", c(method="wanda", dense_ratio=0.0)),
        ("sparsegpt 2:4", c(method="sparsegpt", dense_ratio=0.0)),
        ("unstructured 62.5%", c(method="unstructured", dense_ratio=0.25)),
        ("spense loss-rows", c(method="spense", dense_ratio=0.25, strategy="loss-rows")),
        ("spense salience-cols", c(method="spense", dense_ratio=0.25, strategy="salience-cols")),
        ("spense random cols", c(method="spense", dense_ratio=0.25, strategy="random", axis="cols")),
        ("spense random rows", c(method="spense", dense_ratio=0.25, strategy="random", axis="rows")),
        ("spense first cols", c(method="spense", dense_ratio=0.25, strategy="first", axis="cols")),
    ]
    return [m for m in rows if m[0] in QUICK_METHODS] if quick else rows


QUICK_METHODS = ("dense", "sparsegpt 2:4", "spense salience-cols")


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _check_demo_json(path: Path, model_dir: Path, calib: Path, text: Path) -> None:
    """Refuse a ``demo --json`` path that is one of the demo's inputs (the texts, a file of the model) or an
    existing file that an earlier ``spense demo --json`` did not write: the results never replace a source."""
    p = path.expanduser().resolve()
    m = Path(model_dir).expanduser().resolve()
    if p in (calib.expanduser().resolve(), text.expanduser().resolve()) or p == m or m in p.parents:
        raise InputError(f"--json {path} is an input of this demo (model, --calib or --text); choose another file")
    if p.is_file():
        try:
            earlier = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and "results" in earlier and "command" in earlier):
            raise InputError(f"--json {path} exists and is not an earlier `spense demo --json` file; "
                             "remove it or choose another file")


DEMO_DEFAULTS = {"nsamples": 4, "seqlen": 256, "max_eval_windows": 16}
DEMO_QUICK = {"nsamples": 4, "seqlen": 128, "max_eval_windows": 8}


@app.command()
@handle_errors
def demo(
    quick: bool = typer.Option(False, "--quick", help="CI settings: dense, SparseGPT 2:4 and Spense "
                               "salience-cols only, few samples/windows."),
    model: Optional[str] = typer.Option(None, help="Model (default smollm2-135m). " + MODEL_HELP),
    calib: Optional[Path] = typer.Option(None, help="Calibration text (default: WikiText-2 valid.txt)."),
    text: Optional[Path] = typer.Option(None, help="Evaluation text (default: WikiText-2 test.txt)."),
    nsamples: Optional[int] = typer.Option(None, help=f"Calibration windows (default {DEMO_DEFAULTS['nsamples']}, "
                                           f"--quick {DEMO_QUICK['nsamples']})."),
    seqlen: Optional[int] = typer.Option(None, help=f"Window length (default {DEMO_DEFAULTS['seqlen']}, "
                                         f"--quick {DEMO_QUICK['seqlen']})."),
    max_eval_windows: Optional[int] = typer.Option(None, "--max-eval-windows", help="Evaluation windows (default "
                                                   f"{DEMO_DEFAULTS['max_eval_windows']}, --quick "
                                                   f"{DEMO_QUICK['max_eval_windows']})."),
    block: int = typer.Option(64, help="Dense region granularity for the spense methods."),
    seed: int = typer.Option(0, help="Seed for calibration windows and random strategies."),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu, cuda, cuda:N."),
    sequential: Sequential = typer.Option(Sequential.true, "--sequential", help=SEQUENTIAL_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON to this file."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Also save every pruned model as a Spense "
                                           "checkpoint in DIR/<method> (replaced if present)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Prune a model (default SmolLM2-135M) with every method and print a perplexity table.

    Methods: dense, magnitude / wanda / sparsegpt 2:4, unstructured at 62.5 % density, and spense at
    25 % dense (loss-rows, salience-cols, random cols, random rows, first cols). Pruning happens in
    memory on a fresh copy of the dense model per method. Columns: perplexity, density of the pruned
    linears, layer_loss = summed reconstruction loss ‖(W-Ŵ)X‖²/n of all pruned layers, loss_vs_24 =
    that sum over the sparsegpt 2:4 one, and times.
    """
    import torch

    from spense import data, io
    from spense.atomic import atomic_write_bytes
    from spense.evaluate import perplexity, ppl_table
    from spense.hf import clip_seqlen, load_model, resolve_device, source_dtype
    from spense.pipeline import build_manifest, fresh_copy, linear_density, prune_loaded

    t_all = time.perf_counter()
    base = DEMO_QUICK if quick else DEMO_DEFAULTS
    nsamples = nsamples if nsamples is not None else base["nsamples"]
    seqlen = seqlen if seqlen is not None else base["seqlen"]
    max_eval_windows = max_eval_windows if max_eval_windows is not None else base["max_eval_windows"]
    dev = resolve_device(device)
    from spense.models import resolve_model

    model = model if model is not None else data.default_model()
    model_dir = resolve_model(model)
    _refuse_packed(model_dir, "demo")
    calib_path = calib if calib is not None else data.default_calib_path()
    text_path = text if text is not None else data.default_eval_path()
    methods = demo_methods(seed, block, quick)
    if json_path is not None:  # outputs checked before the work, not after
        io.check_writable(json_path, "--json", kind="file")
        _check_demo_json(Path(json_path), model_dir, Path(calib_path), Path(text_path))
    if out_dir is not None:
        io.check_writable(out_dir, "--out-dir")
        for label, cfg in methods:
            if cfg is not None:
                io.check_out_dir(model_dir, Path(out_dir) / _slug(label), True, flag="--out-dir")

    tok = data.load_tokenizer(model_dir)
    dense = load_model(model_dir)
    seqlen = clip_seqlen(dense.config, seqlen)
    calib_text = data.read_text(calib_path)
    calib_w = data.calibration_windows(data.tokenize(tok, calib_text), nsamples, seqlen, seed)
    eval_w = data.eval_windows(data.tokenize(tok, data.read_text(text_path)), seqlen, max_eval_windows)
    n_params = sum(p.numel() for p in dense.parameters())
    con = _out_console()
    con.print(f"demo: {model} ({n_params / 1e6:.1f}M params), {len(methods)} methods, "
              f"calibration {nsamples}x{seqlen} tokens, evaluation {eval_w.shape[0]}x{seqlen} tokens, "
              f"device {dev}")

    rows = []
    for label, cfg in methods:
        t0 = time.perf_counter()
        m = dense if cfg is None else fresh_copy(dense)
        records: dict = {}
        if cfg is not None:
            records = prune_loaded(m, calib_w, cfg, dev, progress=_bars(quiet), sequential=sequential.value)
        t_prune = time.perf_counter() - t0
        m.to(dev)
        res = perplexity(m, eval_w, dev, progress=_bars(quiet))
        m.to("cpu")
        loss = sum(r["loss"] for r in records.values()) if records else None
        row = {"method": label, "perplexity": res["perplexity"], "density": linear_density(m, block),
               "layer_loss": loss, "loss_vs_24": None, "prune_s": t_prune, "eval_s": res["seconds"],
               "wall_s": time.perf_counter() - t0}
        rows.append(row)
        if not quiet:
            con.print(f"  {label}: perplexity {res['perplexity']:.3f} ({row['wall_s']:.1f} s)")
        if out_dir is not None and cfg is not None:
            man = build_manifest(cfg, records, model_dir, calib_path, data.text_fingerprint(calib_text),
                                 calib_w, seed, t_prune, sequential=sequential.value)
            m.to(source_dtype(model_dir))
            io.save_checkpoint(m, model_dir, Path(out_dir) / _slug(label), man, overwrite=True)
        if cfg is not None:
            del m
    loss_24 = next((r["layer_loss"] for r, (_, c) in zip(rows, methods) if c and c.method == "sparsegpt"), None)
    for r in rows:
        if loss_24 and r["layer_loss"] is not None:
            r["loss_vs_24"] = r["layer_loss"] / loss_24
    total = time.perf_counter() - t_all
    con.print(ppl_table(rows, title=f"spense demo: {model}, total {total:.1f} s"))
    if json_path is not None:
        payload = {
            "model": model if not Path(model).exists() else os.path.relpath(model), "calib": os.path.relpath(calib_path),
            "text": os.path.relpath(text_path),
            "nsamples": nsamples, "seqlen": seqlen, "eval_windows": int(eval_w.shape[0]), "seed": seed,
            "block": block, "device": str(dev), "quick": quick, "sequential": sequential.value, "torch": torch.__version__,
            "spense": __version__, "cpu_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "command": " ".join(["spense", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": rows, "seconds": total,
        }
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(json_path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
        con.print(f"results written to {json_path}")
