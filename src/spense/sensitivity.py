"""Measured sensitivity curves of every prunable linear, for the dense-budget allocator.

:func:`measure_curves` makes one pass over the blocks of the **dense** model: it captures the inputs
of block 0 (:func:`spense.capture.capture_inputs`), and for each block accumulates the Hessian
``H_l = 2 X_l X_lᵀ / n`` of every linear in one forward of the calibration windows, prunes each linear
alone at every candidate :class:`~spense.allocate.Choice` (the per-choice config is
:func:`spense.allocate.choice_config`, pruned with :func:`spense.methods.prune_layer`; the rows choices
share one trial 2:4 pass, as ``loss-rows`` itself does), and records the loss in one of these units:

=============  ===========================================================================================
unit           loss of linear ``l`` at choice ``c`` (``Ŵ`` = pruned weight, ``B`` = block, ``x`` = inputs)
=============  ===========================================================================================
``obs``        ``‖(W - Ŵ) X‖² / n``: the OBS reconstruction loss, in the linear's own output units
``obs-rel``    ``‖(W - Ŵ) X‖² / ‖W X‖²``: the same relative to the linear's output energy
``block``      ``‖B_{W→Ŵ}(x) - B(x)‖² / ‖B(x)‖²``: the block's output error when only ``l`` is pruned,
               relative to the block's output (the residual stream)
``next-block`` ``‖B'(B_{W→Ŵ}(x)) - B'(B(x))‖² / ‖B'(B(x))‖²``: the same one block later (``B'`` = the
               next dense block; the last block uses its own output)
``final``      ``block`` × ``g_i``: the block loss times its block's gain to the last block's output,
               ``g_i = rel. error of the last block's output / rel. error of block i's output`` when
               block ``i`` alone is pruned to 2:4 (all its linears at the cheapest choice); every
               block's perturbation is carried through the later dense blocks in the same pass, on the
               first ``gain_windows`` windows (the last block has ``g = 1``)
=============  ===========================================================================================

The loss must be comparable **across** layers, because the allocator trades a dense byte in one
linear against a dense byte in another.  ``obs`` is not: its units are the linear's output (a
``down_proj`` writes into the residual stream, a ``k_proj`` into attention logits), and its scale
grows with the activations.  ``block`` measures every linear where they all meet, the residual
stream, and divides by its energy; the next block's RMSNorm divides by that norm too, so a relative
error of the residual stream is what the next block sees, in any layer.  But an early block's error
is then carried (and amplified) through every later block: ``final`` measures that gain once per
block, at the cost of one extra forward per block of ``gain_windows × depth`` windows.

**Default: ``block``.**  Measured on the 18M ``models/default`` (16 × 256 calibration tokens from
WikiText-2 valid; each linear pruned alone on the dense model's Hessian and the chosen weights
assembled; mean token KL(dense ‖ pruned) on 32 × 256 tokens of WikiText-2 test — perplexity moves
by < 1.5 on this model and cannot rank the policies).  KL ×10³, greedy mixed allocation (2:4,
rows/cols 0.1/0.25/0.5, whole) at 10 / 25 / 50 % budgets:

=====================  ===========  ===========  ===========
allocation by          10 %         25 %         50 %
=====================  ===========  ===========  ===========
``obs``                31.9         17.8         11.7
``obs-rel``            24.4         14.2         5.2
``block``              12.5         5.7          2.2
``next-block``         10.9         5.6          2.2
``final``              13.0         5.7          2.1
uniform cols (today)   28.5 (12.5%) 23.2         12.7
whole linears, block   12.1         6.8          3.4
=====================  ===========  ===========  ===========

(2:4 everywhere: 39.4.)  The three residual-stream units are equal within noise and 2-3× better
than ``obs``/``obs-rel``; ``block`` is the cheapest of them (no extra forward), so it is the default.

Cost per block: one forward for the Hessians, one for the dense outputs, and per linear and
non-trivial choice one OBS sweep (rows share one) plus, for ``block``/``final``/``next-block``, one
(one, two) block forward(s); ``final`` adds one forward of the carried perturbations.
``obs``/``obs-rel`` need no extra forwards.  The curves are measured on the dense
model, each linear alone: the allocator assumes the losses add up across linears.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spense.allocate import (
    AXES_MODES,
    DEFAULT_SHARES,
    DENSE,
    SPARSE,
    Choice,
    Curve,
    allocate,
    allowed_for,
    budget_from_share,
    choice_config,
    choice_cost,
    choices_for_axes,
    plan_from_allocation,
)
from spense.capture import BlockInputs, capture_inputs, to_device
from spense.errors import InputError, NumericalError
from spense.hessian import HessianAccumulator
from spense.log import logger, progress as progress_bar
from spense.hf import (
    check_finite_weights,
    check_some_prunable,
    find_blocks,
    find_linears,
    get_weight,
    linear_shape,
    resolve_device,
    set_weight,
)
from spense.methods import LayerResult, PruneConfig, prune_layer
from spense.registry import strategy_axis
from spense.selection import restore_rows, select_layout, trial_prune

UNITS = ("obs", "obs-rel", "block", "next-block", "final")
DEFAULT_UNIT = "block"
BUDGET_ALLOC = ("uniform", "greedy")

OnResult = Callable[[str, Choice, torch.Tensor, float], None]


class _Runner:
    """Runs hidden states (``(n, s, h)``, on the device) through one block, ``batch`` windows at a time
    (one at a time if the block refuses a batch), and keeps the outputs on the device (float32)."""

    def __init__(self, block: nn.Module, inputs: BlockInputs, device: torch.device, batch: int) -> None:
        p = next((q for q in block.parameters() if q.is_floating_point()), None)
        self.block, self.dtype = block, (p.dtype if p is not None else torch.float32)
        args, kwargs = inputs.call_args(block)
        self.args = to_device(args, device, self.dtype)
        # as capture.run_block: rotary cos/sin follow the block's dtype, other tensors keep theirs
        self.kwargs = {k: to_device(v, device, self.dtype if k == "position_embeddings" else None)
                       for k, v in kwargs.items()}
        self.batch = max(1, int(batch))

    @torch.no_grad()
    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        outs = []
        for j in range(0, hidden.shape[0], self.batch):
            x = hidden[j : j + self.batch].to(self.dtype)
            try:
                y = self.block(x, *self.args, **self.kwargs)
            except RuntimeError:
                if self.batch == 1:
                    raise
                self.batch = 1  # masks captured for one window that do not broadcast: fall back
                return self(hidden)
            y = y[0] if isinstance(y, (tuple, list)) else y
            if y.shape != x.shape:
                if self.batch == 1:
                    raise InputError(f"block output shape {tuple(y.shape)} differs from its input {tuple(x.shape)}")
                self.batch = 1
                return self(hidden)
            outs.append(y.float())
        return torch.cat(outs, 0)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a - b‖² / ‖b‖²`` in float64."""
    den = float(b.double().pow(2).sum())
    return float((a.double() - b.double()).pow(2).sum()) / den if den > 0 else 0.0


def _forward_losses(mod: nn.Module, What: torch.Tensor, orig: torch.Tensor, run: _Runner, hidden: torch.Tensor,
                    Y: torch.Tensor, run_next: _Runner | None, Z: torch.Tensor, next_block: bool) -> dict[str, float]:
    """The forward units of one candidate ``What`` of the linear ``mod``: ``block`` = ``_rel(block output, Y)`` and,
    where ``next_block``, ``next-block`` = ``_rel(next block's output, Z)`` (the block's own where there is no next
    block); ``mod``'s weight is restored to ``orig`` (a copy of it, taken once per linear) after."""
    set_weight(mod, What)
    try:
        Yc = run(hidden)
        got = {"block": _rel(Yc, Y)}
        if next_block:
            got["next-block"] = _rel(run_next(Yc), Z) if run_next is not None else got["block"]
        return got
    finally:
        mod.weight.data.copy_(orig)


def _prune_choice(W: torch.Tensor, H: torch.Tensor, cfg: PruneConfig, name: str, cache: dict) -> tuple[torch.Tensor, float]:
    """``(Ŵ, OBS loss)`` of ``cfg`` on one linear; the pure 2:4 trial pass is computed once and reused
    by every ``loss-rows`` share and by ``sparsegpt`` (the same pass)."""
    obs_kw = {"n": cfg.n, "m": cfg.m, "blocksize": cfg.blocksize, "percdamp": cfg.percdamp, "name": name}
    reuse = cfg.method == "sparsegpt" or (cfg.method == "spense" and cfg.strategy == "loss-rows")
    if not reuse:
        res: LayerResult = prune_layer(W, H, cfg, name)
        return res.weight, res.loss
    cfg.validate()
    if "trial" not in cache:
        cache["trial"] = trial_prune(W, H, **obs_kw)
    trial = cache["trial"]
    if cfg.method == "sparsegpt":
        return trial.weight, trial.loss
    layout, _ = select_layout(W, H, "loss-rows", cfg.dense_ratio, block=cfg.block, trial=trial, **obs_kw)
    res = restore_rows(trial, W, H, layout)
    layout.check_weight(res.weight)
    return res.weight, res.loss


@torch.no_grad()
def measure_units(
    model: nn.Module,
    windows: torch.Tensor,
    cfg: PruneConfig,
    choices: Sequence[Choice] | None = None,
    device: str | torch.device = "auto",
    units: Iterable[str] = (DEFAULT_UNIT,),
    *,
    strict: bool = False,
    batch: int = 8,
    gain_windows: int = 4,
    on_result: OnResult | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> dict[str, dict[str, Curve]]:
    """``{unit: {full linear name: Curve}}`` for several units in one pass (see the module doc).

    ``cfg`` gives the pruning options (block, n:m, percdamp, blocksize; ``method`` for the 2:4 choice:
    see :func:`spense.allocate.choice_config`).  ``choices`` default to
    :func:`spense.allocate.choices_for_axes` ``("mixed")``.  ``on_result(name, choice, Ŵ, obs_loss)``
    is called for every pruned candidate (studies assemble models from it).  The model is left as it
    was (dense).  ``progress``: a bar of blocks and linears on a terminal (:func:`spense.log.progress`); each
    block also logs one record (``spense`` logger), which the CLI prints where no bar shows.
    ``checkpoint``: a folder (:class:`spense.resume.PassCheckpoint`) where the pass is committed after every
    block (curves so far, the hidden states entering the next block, the carried perturbations) and resumed
    from; ``on_result`` then sees the blocks measured in this call only.
    """
    units = tuple(units)
    bad = [u for u in units if u not in UNITS]
    if bad or not units:
        raise InputError(f"unknown sensitivity unit {bad[0] if bad else ''!r}; choose from {', '.join(UNITS)}")
    choices = tuple(choices) if choices is not None else choices_for_axes("mixed")
    for c in choices:
        choice_config(c, cfg).validate()
    dev = resolve_device(device)
    prefix, blocks = find_blocks(model)
    forward_units = {"block", "next-block", "final"} & set(units)
    inputs = capture_inputs(model, windows, dev)
    hidden = inputs.hidden.to(dev)
    curves: dict[str, dict[str, Curve]] = {u: {} for u in units}
    # "final": every block's all-2:4 output perturbation, carried to the last block together
    want_final = "final" in units
    gw = max(1, min(int(gain_windows), hidden.shape[0]))
    probe = min((c for c in choices if not c.whole), key=lambda c: c.share, default=None)
    pert: torch.Tensor | None = None
    block_err: list[float] = []
    raw: dict[str, tuple[int, int, tuple, tuple]] = {}  # name -> (block, numel, cost, block losses)
    store, saved = _open_checkpoint(checkpoint, cfg, choices, units, strict, batch, gw, windows, len(blocks))
    start = saved[0] if saved is not None else 0
    if saved is not None:
        hidden, pert = saved[2]["hidden"].to(dev), saved[2].get("pert")
        pert = pert.to(dev) if pert is not None else None
        curves, raw, block_err = _decode_pass(saved[1], choices)
        logger.info("sensitivity: resumed after block %d/%d (%s)", start, len(blocks), store.root)
    with progress_bar(progress) as bar:
        outer = bar.add_task("sensitivity", total=len(blocks), completed=start)
        for i, block in enumerate(blocks):
            if i < start:
                continue
            t_block = time.perf_counter()
            bname = f"{prefix}.{i}"
            linears = find_linears(block, cfg.block, cfg.m, strict, bname, warn=False)
            inner = bar.add_task(f"  {bname}", total=len(linears))
            nxt = blocks[i + 1] if "next-block" in units and i + 1 < len(blocks) else None
            block.to(dev)
            if nxt is not None:
                nxt.to(dev)
            try:
                run = _Runner(block, inputs, dev, batch)
                accs: dict[str, HessianAccumulator] = {}
                handles = []
                for name, mod in linears.items():
                    acc = accs[name] = HessianAccumulator(linear_shape(mod)[1], f"{bname}.{name}", device=dev)
                    handles.append(mod.register_forward_pre_hook(lambda _m, a, _acc=acc: _acc.add(a[0].detach())))
                try:
                    Y = run(hidden)
                finally:
                    for h in handles:
                        h.remove()
                if not bool(torch.isfinite(Y).all()):
                    raise NumericalError(f"block {bname} produced NaN/Inf outputs on the calibration windows")
                run_next = _Runner(nxt, inputs, dev, batch) if nxt is not None else None
                Z = run_next(Y) if run_next is not None else Y
                if pert is not None:
                    pert = run(pert)  # earlier blocks' perturbations through this (dense) block
                probe_w: dict[str, torch.Tensor] = {}
                for name, mod in linears.items():
                    full = f"{bname}.{name}"
                    bar.update(inner, description=f"  {full}")
                    W = get_weight(mod).to(dev)
                    H = accs.pop(name).H
                    N, K = W.shape
                    energy = float(((W @ H) * W).sum()) / 2  # ‖W X‖² / n
                    orig = mod.weight.data.clone()
                    cache: dict = {}
                    vals: dict[str, list[float]] = {u: [] for u in units}
                    for c in choices:
                        if c.whole:
                            What, loss = W, 0.0
                        else:
                            What, loss = _prune_choice(W, H, choice_config(c, cfg), full, cache)
                        if on_result is not None:
                            on_result(full, c, What, loss)
                        if want_final and c == probe:
                            probe_w[name] = What
                        got = {"obs": loss, "obs-rel": loss / energy if energy > 0 else 0.0}
                        if forward_units and not c.whole:
                            got.update(_forward_losses(mod, What, orig, run, hidden, Y, run_next, Z,
                                                       "next-block" in units))
                        elif forward_units:
                            got["block"] = got["next-block"] = 0.0
                        for u in units:
                            vals[u].append(float(got.get(u, got.get("block", 0.0))))
                    cost = tuple(float(choice_cost((N, K), c, cfg.block)) for c in choices)
                    for u in units:
                        curves[u][full] = Curve(full, N * K, choices, tuple(vals[u]), cost)
                    if want_final:
                        raw[full] = (len(block_err), N * K, cost, tuple(vals["final"]))
                    del cache, H
                    bar.advance(inner)
                if want_final:
                    saved = {n: linears[n].weight.data.clone() for n in probe_w}
                    try:
                        for n, w in probe_w.items():
                            set_weight(linears[n], w)
                        Ys = run(hidden[:gw])
                    finally:
                        for n, w in saved.items():
                            linears[n].weight.data.copy_(w)
                    block_err.append(_rel(Ys, Y[:gw]))
                    pert = Ys if pert is None else torch.cat([pert, Ys], 0)
                hidden = Y
            finally:
                block.to("cpu")
                if nxt is not None:
                    nxt.to("cpu")
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
            bar.remove_task(inner)
            bar.advance(outer)
            if store is not None:
                more = {"pert": pert} if pert is not None else {}
                store.save(i + 1, _encode_pass(curves, raw, block_err), {"hidden": hidden, **more})
            logger.info("%s: sensitivity of %d linears x %d choices in %.1f s (block %d/%d)", bname, len(linears),
                        len(choices), time.perf_counter() - t_block, i + 1, len(blocks))
    if want_final:
        # gain_i = (final-output error / block-i output error) of block i's all-2:4 perturbation
        ref = hidden[:gw]
        gain = [(_rel(pert[k * gw:(k + 1) * gw], ref) / e if e > 0 else 0.0) for k, e in enumerate(block_err)]
        for full, (k, numel, cost, block_loss) in raw.items():
            curves["final"][full] = Curve(full, numel, choices, tuple(x * gain[k] for x in block_loss), cost)
    return curves


def _open_checkpoint(root, cfg, choices, units, strict, batch, gw, windows, n_blocks):
    """``(PassCheckpoint or None, its last commit or None)``: the key names every setting the pass depends on
    but the model's weights (the folder belongs to one model: the pipeline's run fingerprint sees to that)."""
    if root is None:
        return None, None
    from spense.io import tensor_sha256
    from spense.resume import PassCheckpoint

    ids = tensor_sha256(windows.to(torch.int64))
    key = json.dumps({"cfg": cfg.to_dict(), "choices": [str(c) for c in choices], "units": list(units),
                      "strict": strict, "batch": batch, "gain_windows": gw, "windows": [list(windows.shape), ids],
                      "blocks": n_blocks}, sort_keys=True, default=str)
    store = PassCheckpoint(root, key)
    return store, store.load()


def _encode_pass(curves, raw, block_err) -> dict:
    """The JSON part of a committed pass (floats round-trip exactly through ``json``)."""
    return {"curves": {u: {n: [c.numel, list(c.loss), list(c.cost)] for n, c in cs.items()}
                       for u, cs in curves.items()},
            "raw": {n: [k, numel, list(cost), list(loss)] for n, (k, numel, cost, loss) in raw.items()},
            "block_err": block_err}


def _decode_pass(meta: dict, choices: tuple[Choice, ...]):
    curves = {u: {n: Curve(n, int(v[0]), choices, tuple(v[1]), tuple(v[2])) for n, v in cs.items()}
              for u, cs in meta["curves"].items()}
    raw = {n: (int(v[0]), int(v[1]), tuple(v[2]), tuple(v[3])) for n, v in meta["raw"].items()}
    return curves, raw, [float(e) for e in meta["block_err"]]


def measure_curves(
    model: nn.Module,
    windows: torch.Tensor,
    cfg: PruneConfig,
    choices: Sequence[Choice] | None = None,
    device: str | torch.device = "auto",
    unit: str = DEFAULT_UNIT,
    **kw: Any,
) -> dict[str, Curve]:
    """``{full linear name: Curve}`` in ``unit`` (default ``block``); see :func:`measure_units`."""
    return measure_units(model, windows, cfg, choices, device, (unit,), **kw)[unit]


def check_plan_options(cfg: PruneConfig, dense_layers: str | None = None, budget_alloc: str = "uniform",
                       axes: str | None = None) -> None:
    """One-line :class:`InputError` for option combinations :func:`build_plan` refuses (call it
    before loading anything)."""
    if budget_alloc not in BUDGET_ALLOC:
        raise InputError(f"unknown budget allocation {budget_alloc!r}; choose one of {', '.join(BUDGET_ALLOC)}")
    if axes is not None and axes not in AXES_MODES:
        raise InputError(f"axes must be one of {', '.join(AXES_MODES)}, got {axes!r}")
    if dense_layers is not None and cfg.method == "dense":
        raise InputError("--dense-layers with --method dense: every layer is dense already; pick a "
                         "pruning method for the other layers")
    if (budget_alloc == "greedy" or axes is not None) and cfg.method != "spense":
        what = "--budget-alloc greedy" if budget_alloc == "greedy" else "--axes"
        raise InputError(f"{what} spreads the dense region of method 'spense' (its --dense-ratio is the "
                         f"budget); got method {cfg.method!r}")


def build_plan(
    model: nn.Module,
    windows: torch.Tensor,
    cfg: PruneConfig,
    device: str | torch.device = "auto",
    *,
    dense_layers: str | None = None,
    budget_alloc: str = "uniform",
    axes: str | None = None,
    unit: str = DEFAULT_UNIT,
    shares: Sequence[float] = DEFAULT_SHARES,
    strict: bool = False,
    curves: dict | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> tuple[dict[str, PruneConfig] | None, dict | None]:
    """The per-linear plan for ``pipeline.prune_loaded(plan=...)`` and its ``spense.json`` summary.

    * ``dense_layers`` (:mod:`spense.dense_layers` SPEC): the named linears stay whole dense; with
      ``auto:F`` more whole linears, chosen by the measured curves (choices 2:4 and dense only).
    * ``budget_alloc="greedy"``: the budget is ``cfg.dense_ratio`` of the weights of all prunable
      linears, spread by :func:`spense.allocate.allocate` over pure 2:4, row / column regions at
      ``shares`` on ``axes`` (default ``mixed``) and whole dense; linears named by ``dense_layers``
      are dense and paid from the same budget.
    * ``budget_alloc="uniform"`` with ``axes``: every linear gets ``cfg.dense_ratio`` on ``rows``,
      ``cols``, or (``mixed``) whichever of the two has the lower measured loss on that linear.

    Returns ``(None, None)`` when nothing is asked (uniform, no ``axes``, no ``dense_layers``).  The
    model must be dense; it is left unchanged.  ``curves``: a dict that caches the measured curves
    across calls on the same model and windows (keyed by choices and unit).  ``progress``: the measurement's
    bar; ``checkpoint``: its resumable state (both :func:`measure_units`).
    """
    import time

    from spense.dense_layers import parse_spec, resolve_auto, split_auto

    check_plan_options(cfg, dense_layers, budget_alloc, axes)
    if dense_layers is None and budget_alloc == "uniform" and axes is None:
        return None, None
    t0 = time.perf_counter()
    prefix, blocks = find_blocks(model)
    check_some_prunable(blocks, cfg.block, cfg.m)
    shapes = {f"{prefix}.{i}.{n}": linear_shape(mod) for i, b in enumerate(blocks)
              for n, mod in find_linears(b, cfg.block, cfg.m, strict, f"{prefix}.{i}", warn=False).items()}
    numel = {n: N * K for n, (N, K) in shapes.items()}
    check_finite_weights(model)  # name a bad weight before measuring (NaN/Inf would show as activations)
    selected = parse_spec(dense_layers, list(numel), numel) if dense_layers is not None else []
    fixed, fraction = split_auto(selected)
    r = float(cfg.dense_ratio)
    if budget_alloc == "greedy":
        choices = choices_for_axes(axes or "mixed", shares)
    elif axes is not None:
        choices = tuple(choices_for_axes(axes, (r,), whole=False, sparse=False)) if 0.0 < r < 1.0 else (Choice(r),)
    else:
        choices = (SPARSE, DENSE)
    measure = fraction is not None or budget_alloc == "greedy" or (axes == "mixed" and 0.0 < r < 1.0)
    key = (tuple(str(c) for c in choices), unit)
    if not measure:
        measured = {}
    elif curves is not None and key in curves:
        measured = curves[key]
    else:
        measured = measure_curves(model, windows, cfg, choices, device, unit, strict=strict, progress=progress,
                                  checkpoint=checkpoint)
        if curves is not None:
            curves[key] = measured
    curves = measured
    dense = set(resolve_auto(selected, {n: curves[n] for n in numel}) if fraction is not None else fixed)
    chosen: dict[str, Choice] = {n: DENSE for n in dense}
    summary: dict[str, Any] = {"dense_layers": dense_layers, "budget_alloc": budget_alloc, "axes": axes,
                               "unit": unit if measure else None}
    free = [n for n in numel if n not in dense]
    if budget_alloc == "greedy":
        kept = sum(numel[n] for n in dense)
        budget = budget_from_share([curves[n] for n in numel], r) - kept
        if budget < 0:
            raise InputError(f"--dense-layers keeps {kept / sum(numel.values()):.3f} of the weights dense, "
                             f"more than the budget --dense-ratio {r:g}")
        alloc = allocate([curves[n] for n in free], budget, allowed_for(axes or "mixed"))
        chosen.update(alloc.choice)
        summary.update(budget_share=r, predicted_loss=alloc.loss)
    elif axes is not None:
        if measure:  # mixed: per linear, the axis of lower measured loss at the same share
            chosen.update(allocate([curves[n] for n in free], math.inf).choice)
        else:
            chosen.update({n: choices[0] for n in free})
    plan = plan_from_allocation(chosen, cfg)
    dense_w = 0
    for n, shape in shapes.items():  # the linears outside the plan get cfg
        c = plan.get(n, cfg)
        if c.method == "dense":
            dense_w += numel[n]
        elif c.method == "spense":
            dense_w += choice_cost(shape, Choice(c.dense_ratio, strategy_axis(c.strategy, c.axis)), c.block)
    summary["share"] = dense_w / sum(numel.values())
    summary["choices"] = {n: str(c) for n, c in chosen.items()}
    summary["seconds"] = time.perf_counter() - t0
    return plan, summary
