"""``spense prune``: options checked before any work, then the one-shot pruning run."""

from __future__ import annotations

import contextlib
import shlex
import time
import warnings
from pathlib import Path
from typing import Optional

import typer

from spense.atomic import out_lock
from spense.cli.app import _bars, _out_console, app, handle_errors, literal
from spense.cli.common import (MODEL_HELP, SEQUENTIAL_HELP, Axis, Method, Salience, Sequential, Strategy,
                               check_min, check_source, load_checkpoint, summary_rows)
from spense.errors import InputError
from spense.registry import METHODS, STRATEGIES, default_dense_ratio


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


def check_placement(method: str, strategy, axis, salience, budget_alloc: str, axes: Optional[str] = None) -> None:
    """One line for a placement option the run would ignore: ``--strategy``, ``--axis`` and ``--salience``
    pick the dense region of ``--method spense`` by hand (salience: of strategy salience-cols), and
    ``--budget-alloc greedy`` or ``--axes`` place every region themselves (loss-rows on rows, salience-cols on
    columns; they keep only ``--salience``)."""
    hand = [f"--{n} {v.value}" for n, v in (("strategy", strategy), ("axis", axis)) if v is not None]
    if not METHODS[method].region and (hand or salience is not None):
        given = (hand + [f"--salience {salience.value}" if salience is not None else ""])[0]
        raise InputError(f"{given} places the dense region of --method spense; method {method!r} has none")
    if hand and budget_alloc == "greedy":
        raise InputError(f"{hand[0]} places every dense region by hand and --budget-alloc greedy by measured "
                         "sensitivity: give one of them")
    if hand and axes is not None:
        raise InputError(f"{hand[0]} places every dense region by hand and --axes {axes} picks each one's axis "
                         "(loss-rows on rows, salience-cols on columns): give one of them")
    if strategy is None and axis is not None and STRATEGIES["salience-cols"].implied_axis not in (None, axis.value):
        fits = [n for n, sp in STRATEGIES.items() if sp.implied_axis in (None, axis.value)]
        raise InputError(f"--axis {axis.value} needs a --strategy that places {axis.value} ({', '.join(fits)}): the "
                         "default strategy, salience-cols, keeps columns")
    if salience is not None and strategy is not None and strategy.value != "salience-cols":
        raise InputError(f"--salience ranks the columns of --strategy salience-cols; strategy "
                         f"{strategy.value!r} does not read it")


def _eval_ids(model_dir: Path, eval_text: Path, seqlen: int):
    """``--eval``'s token ids, read before pruning so that a missing or too-short text fails before the
    work; the checkpoint keeps the source's tokenizer, so the same ids serve the evaluation after it.
    The window is clipped as it will be after the prune: by the model's config as transformers reads it."""
    from transformers import AutoConfig

    from spense import data
    from spense.hf import max_positions

    tok = data.load_tokenizer(model_dir)
    ids = data.tokenize(tok, data.read_text(eval_text))
    try:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=False)
    except Exception:  # an unreadable config: the prune's own load names the problem
        config = None
    data.eval_windows(ids, min(seqlen, max_positions(config) or seqlen), bos=data.bos_id(tok))
    return ids


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
    dense_ratio: Optional[float] = typer.Option(None, "--dense-ratio", help="Fraction of the weights kept dense "
                                                "(spense, default 0.25: by default a budget the allocator spreads "
                                                "over the linears, see --budget-alloc; with --strategy, of each "
                                                "weight); unstructured prunes to the same overall "
                                                "density (62.5 % at 0.25); must be 0 for sparsegpt/wanda/magnitude "
                                                "(their default)."),
    strategy: Optional[Strategy] = typer.Option(None, help="How spense picks the dense region of every linear "
                                                "(uniform --dense-ratio). Default: none given = the dense-budget "
                                                "allocator (see --budget-alloc)."),
    axis: Optional[Axis] = typer.Option(None, help="Dense axis for --strategy random/first (default cols); "
                                        "loss-rows implies rows, salience-cols implies cols."),
    salience: Optional[Salience] = typer.Option(None, help="salience-cols ranking (default obs-col): obs-col "
                                                "(‖W[:,j]‖²/[H⁻¹]_jj, OBS cost of the whole column), act "
                                                "(diag(H)·‖W[:,j]‖²) or obs (trial-pass OBS loss per column); "
                                                "measured in docs/results.md."),
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
    from spense.sensitivity import check_plan_options

    t0 = time.perf_counter()
    out = out.expanduser()  # `--out=~/x` reaches here unexpanded by the shell
    # options first (no file is read), then the model, --eval's text and the output
    check_min(seqlen=(seqlen, 2))
    spec = METHODS[method.value]
    if dense_ratio is not None and "dense_ratio" not in spec.fields and spec.fixed_dense_ratio is None:
        raise InputError(f"--dense-ratio {dense_ratio:g} does not apply to --method {method.value}, which keeps "
                         "every weight as it is")
    budget_alloc, axes = default_allocation(method.value, budget_alloc, strategy, axis, axes, dense_layers,
                                            col_blocks, dense_ratio, tie_cols)
    check_placement(method.value, strategy, axis, salience, budget_alloc, axes)
    cfg = _make_config(method.value, dense_ratio, (strategy or Strategy.salience_cols).value,
                       axis.value if axis else None, block, blocksize, percdamp, seed,
                       (salience or Salience.obs_col).value, col_blocks, tie_cols)
    check_plan_options(cfg, dense_layers, budget_alloc, axes)
    model_dir = resolve_model(model)
    check_source(model_dir, "prune")
    eval_ids = _eval_ids(model_dir, eval_text, seqlen) if eval_text is not None else None
    from spense.io import check_out_dir

    inputs = {"--calib": calib, "--eval": eval_text}  # files of the run's that replacing OUT would delete
    check_out_dir(model_dir, out, overwrite, inputs=inputs)  # fail before the work, not after
    if packed:
        from spense.atomic import recover_stale

    with out_lock(out) if packed else contextlib.nullcontext():  # --packed: OUT is this run's from the start
        if packed:
            recover_stale(out.resolve())
            check_out_dir(model_dir, out, overwrite, inputs=inputs)  # again, with a swap stopped halfway undone
        # --packed: prune into OUT.unpacked (resumable under a fixed name), then pack into OUT
        target = out.with_name(out.name + ".unpacked") if packed else out
        if packed and target.exists() and not overwrite:  # a folder of the user's, or an earlier run's whole prune
            raise InputError(f"{target} exists and --packed would replace it: if it is an earlier --packed run's "
                             f"checkpoint, pack it (`spense pack {target} --out {out}`); else remove it, or pass "
                             "--overwrite")
        manifest = prune_model(model_dir, target, cfg, calib, nsamples=nsamples, seqlen=seqlen, seed=seed,
                               device=device, strict=strict, overwrite=overwrite or packed, progress=_bars(quiet),
                               dtype=dtype, restart=restart, sequential=sequential.value,
                               dense_layers=dense_layers, budget_alloc=budget_alloc, axes=axes, source=model,
                               on_resume=lambda kept, root: _out_console().print(
                                   f"resuming the interrupted run in {root}: {kept} (--restart "
                                   "starts over)", markup=False))
        if packed:
            import shutil

            from spense.runtime.checkpoint import pack_checkpoint

            try:
                pack_checkpoint(target, out, overwrite=overwrite)
            except KeyboardInterrupt as e:  # the prune is done: rerunning it would be refused (OUT.unpacked exists)
                raise type(e)(f"interrupted in the pack; the pruned checkpoint {target} is complete: "
                              f"`spense pack {shlex.quote(str(target))} --out {shlex.quote(str(out))}` packs it"
                              ) from None
            shutil.rmtree(target)
    s = summary_rows(manifest["layers"].values())
    if cfg.method == "spense" and cfg.dense_ratio > 0 and manifest["layers"] and \
            not any(r["layout"]["dense_idx"] for r in manifest["layers"].values()):
        warnings.warn(f"no layer got a dense region: a dense ratio of {cfg.dense_ratio:g} rounds to no whole block "
                      f"of --block {cfg.block} on these layers, so the checkpoint is plain 2:4; pass a smaller "
                      "--block")
    elif cfg.method == "spense" and budget_alloc != "greedy" and s["dense_share"] < 0.9 * cfg.dense_ratio:
        warnings.warn(f"the dense regions hold {s['dense_share']:.3f} of the weights, not {cfg.dense_ratio:g}: each "
                      f"layer's rounds down to whole blocks of --block {cfg.block}; a smaller --block comes closer")
    con = _out_console()
    con.print(
        f"[green]pruned[/green] {s['layers']} layers with {cfg.method}"
        + ((f" (dense budget {cfg.dense_ratio:g} spread by the allocator, {axes} axes)" if budget_alloc == "greedy"
            else f" ({cfg.strategy}, dense ratio {cfg.dense_ratio:g})") if cfg.method == "spense" else "")
        + f": density {s['density']:.4f}"
        + (f", dense share {s['dense_share']:.3f}" if cfg.method == "spense" and cfg.dense_ratio > 0 else "")
        + f", total loss {s['loss']:.4g}, "
        f"wall time {time.perf_counter() - t0:.1f} s -> {literal(out)}"
    )
    if eval_text is not None:
        try:  # the checkpoint is written: an interrupt now must not send the user to rerun the prune
            from spense import data
            from spense.evaluate import perplexity
            from spense.hf import clip_seqlen, resolve_device

            dev = resolve_device(device)
            model = load_checkpoint(out, dev, "float32" if dev.type == "cpu" else None)
            sl = clip_seqlen(model.config, seqlen)
            windows = data.eval_windows(eval_ids, sl, bos=data.bos_id(data.load_tokenizer(out)))
            res = perplexity(model, windows, dev, progress=_bars(quiet))
            con.print(f"perplexity {res['perplexity']:.3f} on {res['windows']} windows of {sl} tokens "
                      f"({literal(eval_text)})")
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (app.Terminated)
            raise type(e)(f"interrupted in the evaluation; the checkpoint {out} was written in full "
                          f"(`spense eval {shlex.quote(str(out))} --text {shlex.quote(str(eval_text))} "
                          f"--seqlen {seqlen}` evaluates it)") from None
