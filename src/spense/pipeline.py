"""The pruning loop: :func:`prune_block` (one block), :func:`prune_loaded` (all blocks, resumable) and
:func:`prune_model` (folder in, checkpoint out).

For one model:

1. load the model (:mod:`spense.hf`) and the calibration windows (:mod:`spense.data`);
2. capture what enters block 0 (:func:`spense.capture.capture_inputs`);
3. for every block, on the compute device (one block there at a time), :func:`prune_block`:
   find the sublayer groups (linears reading the same input: q/k/v, gate/up, ...) in execution
   order; for each group accumulate ONE Hessian ``H = 2 X Xᵀ / n`` over all calibration samples and
   prune every linear of the group with it (:func:`spense.methods.prune_layer`).

   * ``sequential="true"`` (default, true-sequential): group ``g``'s ``X`` comes from a forward pass
     of the block in which groups ``< g`` are already pruned;
   * ``sequential="block"``: every group's ``X`` comes from one forward pass of the *unpruned* block
     (what llm-compressor's SparseGPT does; kept for the side-by-side).

   The block's outputs, computed *after* pruning, are the next block's inputs;
4. after every block, persist the state in ``OUT.partial/`` (:mod:`spense.resume`) so that an
   interrupted run resumes bit-identically;
5. write the checkpoint with :func:`spense.io.save_checkpoint` in the source's dtype.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from spense.capture import BlockInputs, StopForward, capture_inputs, group_calls, record_calls, run_block
from spense.errors import CheckpointError, InputError, NumericalError
from spense.hessian import HessianAccumulator
from spense.hf import (check_finite_weights, check_some_prunable, clip_seqlen, find_blocks, find_linears, get_weight,
                       is_conv1d, linear_shape, load_model, parse_dtype, resolve_device, set_weight, source_dtype)
from spense.log import logger, progress as progress_bar
from spense.methods import all_dense_layout, prune_layer
from spense.registry import check_sequential, method_config, method_spec, record_fields
from spense.atomic import out_lock, recover_stale
from spense.resume import CRASH_ENV, ResumeState, SimulatedCrash, file_stamps, fingerprint, partial_dir
from spense.selection import column_salience
from spense.sensitivity import build_plan, check_plan_options

__all__ = ["prune_block", "prune_loaded", "prune_model", "build_manifest", "linear_density", "fresh_copy",
           "CRASH_ENV", "SimulatedCrash", "partial_dir"]

HessianHook = Callable[[str, torch.Tensor], None]
LayerHook = Callable[[str, dict], None]


# --------------------------------------------------------------------------------------------------
# one block
# --------------------------------------------------------------------------------------------------
def _accumulate(block: nn.Module, inputs: BlockInputs, linears: dict[str, nn.Module],
                groups: list[list[str]], prefix: str, dev: torch.device,
                stop: bool = True) -> dict[int, HessianAccumulator]:
    """One forward pass of ``block`` over every sample; ONE accumulator per group, fed the input of
    the group's first linear (the other linears of the group read the very same tensor). With ``stop``
    (for blocks whose every linear runs once a pass, so ``groups`` are in call order) each pass stops at
    the last group's input (:class:`StopForward`): of a Llama block's true-sequential passes, the one for
    q/k/v runs only the first norm, those for o and gate/up no MLP linear, the one for down no down
    projection. Without it every pass runs the whole block, and a linear run twice adds both inputs."""
    accs: dict[int, HessianAccumulator] = {}
    handles = []
    for gi, group in enumerate(groups):
        mod = linears[group[0]]
        acc = accs[gi] = HessianAccumulator(linear_shape(mod)[1], f"{prefix}.{group[0]}", device=dev)

        def hook(module: nn.Module, args: tuple, _acc: HessianAccumulator = acc, _last: bool = gi == len(groups) - 1
                 ) -> None:
            _acc.add(args[0].detach())
            if _last and stop:
                raise StopForward

        handles.append(mod.register_forward_pre_hook(hook))
    try:
        run_block(block, inputs, dev, keep=False)
    finally:
        for h in handles:
            h.remove()
    return accs


def prune_block(
    block: nn.Module,
    inputs: BlockInputs,
    cfg: Any,
    *,
    prefix: str = "",
    linears: dict[str, nn.Module] | None = None,
    plan: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    sequential: str = "true",
    strict: bool = False,
    on_layer: LayerHook | None = None,
    on_hessian: HessianHook | None = None,
) -> tuple[dict[str, dict], torch.Tensor]:
    """Prune one block in place on its calibration ``inputs``; return ``(records, outputs)``.

    ``records`` = ``{full module name: layer record}``; ``outputs`` = the *pruned* block's outputs
    (``(n, seqlen, hidden)`` float32, on the device of ``inputs.hidden``), the next block's inputs.
    ``prefix`` is the block's module path (``model.layers.3``); ``linears`` defaults to
    :func:`spense.hf.find_linears`; ``plan`` maps full module names to per-linear config overrides.
    ``sequential``: ``"true"`` (each group's Hessian after the earlier groups were pruned) or
    ``"block"`` (all from the unpruned block).  Hooks:
    ``on_layer(name, record)`` after each linear, ``on_hessian(name, H)`` with the Hessian each linear
    is pruned with.  The block is moved to ``device`` and back to the CPU.
    """
    check_sequential(sequential)
    dev = resolve_device(device)
    if linears is None:
        linears = find_linears(block, cfg.block, cfg.m, strict, prefix)
    records: dict[str, dict] = {}
    block.to(dev)
    try:
        calls = record_calls(block, linears, inputs, dev) if linears else []
        groups = group_calls(calls, linears)
        once = len(calls) == len({name for name, _ in calls})  # every linear runs once: passes may stop early
        accs = _accumulate(block, inputs, linears, groups, prefix, dev, once) if sequential == "block" else {}
        for gi, group in enumerate(groups):
            acc = accs.pop(gi) if sequential == "block" else \
                _accumulate(block, inputs, linears, [group], prefix, dev, once)[0]
            fulls = [f"{prefix}.{name}" if prefix else name for name in group]
            lcfgs = [plan.get(full, cfg) if plan else cfg for full in fulls]
            tied = tied_scores([linears[name] for name in group], fulls, lcfgs, acc.H, dev)
            for name, full, lcfg in zip(group, fulls, lcfgs):
                mod = linears[name]
                if on_hessian is not None:
                    on_hessian(full, acc.H)
                res = prune_layer(get_weight(mod).to(dev), acc.H, lcfg, full, tied)
                set_weight(mod, res.weight)
                records[full] = layer_record(mod, res, lcfg, f"{full}.weight")
                if on_layer is not None:
                    on_layer(full, records[full])
            del acc
        outs = run_block(block, inputs, dev, keep=True)
        if not bool(torch.isfinite(outs).all()):
            raise NumericalError(f"block {prefix} produced NaN/Inf outputs after pruning")
    finally:
        block.to("cpu")
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return records, outs


def tied_scores(mods: list[nn.Module], names: list[str], cfgs: list[Any], H: torch.Tensor,
                dev: torch.device) -> torch.Tensor | None:
    """``Σ_i salience(W_i, H)`` over a group of linears that read the same input (one ``H``), when
    every member's config asks for ``tie_cols`` with the same region rule: ranking the columns of the
    stacked weight ``[W_1; W_2; ...]``, so all of them keep the same dense columns (and an engine can run
    them as one Spense layer, :func:`spense.runtime.fuse.fuse_rows`).  None otherwise."""
    if len(mods) < 2:
        return None
    key = {(c.method, c.strategy, c.salience, float(c.dense_ratio), c.block, c.col_blocks, c.tie_cols) for c in cfgs}
    c = cfgs[0]
    if len(key) != 1 or not c.tie_cols:
        return None
    return sum(column_salience(get_weight(m).to(dev).float(), H, c.salience, c.percdamp, n)
               for m, n in zip(mods, names))


def layer_record(mod: nn.Module, res: Any, cfg: Any, weight_name: str) -> dict:
    """The ``spense.json`` record of one pruned linear (method fields from :mod:`spense.registry`)."""
    from spense.format import density

    lay = res.layout
    if method_spec(cfg.method).all_dense_record:
        lay = all_dense_layout(lay)  # no N:M region: stored wholly dense in the Spense format
    return {
        "weight": weight_name,
        "transposed": is_conv1d(mod),
        "layout": lay.to_dict(),
        **record_fields(cfg),
        "dense_ratio": float(lay.dense_ratio),
        "loss": float(res.loss),
        "density": float(density(res.weight)),
        "seconds": float(res.seconds),
    }


# --------------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------------
def resident_inputs(hidden: torch.Tensor, dev: torch.device, blocks: nn.ModuleList) -> torch.Tensor:
    """The calibration hidden states on the GPU when they fit, else on the CPU.

    Every block reads its inputs five times (group discovery, one Hessian pass per sublayer group,
    the outputs); kept on the GPU that is no host copy at all (a Qwen3-8B block at 128 x 2048 tokens
    read 21 GB through PCIe per block).  They stay if inputs and outputs (``2 x`` their bytes) fit
    in 80 % of the free memory beside a reserve for the block's work: 4 float32 copies of the largest
    block and 6 Hessian-sized matrices of its widest linear input.
    """
    if dev.type != "cuda" or hidden.device.type == "cuda":
        return hidden
    big = max(blocks, key=lambda b: sum(p.numel() for p in b.parameters()))
    k = max((m.in_features for m in big.modules() if isinstance(m, nn.Linear)), default=0)
    reserve = 16 * sum(p.numel() for p in big.parameters()) + 24 * k * k
    free, _ = torch.cuda.mem_get_info(dev)
    if 2 * hidden.numel() * hidden.element_size() + reserve < 0.8 * free:
        return hidden.to(dev)
    logger.info("calibration activations stay in CPU memory (%.1f GB; %.1f GB free on the GPU)",
                hidden.numel() * hidden.element_size() / 1e9, free / 1e9)
    return hidden


def check_plan(plan: dict[str, Any] | None, known: set[str]) -> None:
    """Every plan entry names a prunable linear and holds a valid config (InputError otherwise)."""
    if not plan:
        return
    unknown = sorted(set(plan) - known)
    if unknown:
        raise InputError(f"the per-layer plan names {len(unknown)} module(s) that are not prunable linears "
                         f"of the model, e.g. {unknown[0]!r}")
    for name, c in plan.items():
        try:
            c.validate()
        except InputError as e:
            raise InputError(f"{name}: {e}") from None


def _restore_finished(blocks: nn.ModuleList, prefix: str, state: ResumeState) -> None:
    for i in range(state.next_block):
        sd = state.load_block(i)
        mods = dict(blocks[i].named_modules())
        for key, t in sd.items():
            mod = mods.get(key[: -len(".weight")])
            if mod is None or not key.endswith(".weight") or mod.weight.shape != t.shape:
                raise CheckpointError(f"resume state does not match the model ({prefix}.{i}.{key})")
            mod.weight.data.copy_(t)


def prune_loaded(
    model: nn.Module,
    windows: torch.Tensor,
    cfg: Any,
    device: str | torch.device = "auto",
    strict: bool = False,
    progress: bool = True,
    state: ResumeState | None = None,
    after_block: Callable[[int], None] | None = None,
    *,
    plan: dict[str, Any] | None = None,
    sequential: str = "true",
    on_hessian: HessianHook | None = None,
) -> dict[str, dict]:
    """Prune ``model`` in place, block by block, on calibration ``windows``; ``{name: layer record}``.

    Block ``i + 1`` is fed the outputs of the pruned block ``i``.  With ``state`` the run is resumable
    (:class:`spense.resume.ResumeState`); ``after_block(i)`` is called after block ``i`` is committed
    (test hook).  ``plan``, ``sequential``, ``on_hessian``: see :func:`prune_block`.
    """
    check_sequential(sequential)
    dev = resolve_device(device)
    prefix, blocks = find_blocks(model)
    check_finite_weights(model)
    model.eval()
    records: dict[str, dict] = dict(state.records) if state else {}
    start = state.next_block if state else 0
    crash_after = os.environ.get(CRASH_ENV)
    # all linears known up front: the plan is checked and the layer bar has a total
    if cfg.method != "dense":
        check_some_prunable(blocks, cfg.block, cfg.m)
    block_linears = [find_linears(b, cfg.block, cfg.m, strict, f"{prefix}.{i}") for i, b in enumerate(blocks)]
    check_plan(plan, {f"{prefix}.{i}.{n}" for i, lin in enumerate(block_linears) for n in lin})
    if state is not None:
        _restore_finished(blocks, prefix, state)
    if start >= len(blocks):
        return records

    inputs = capture_inputs(model, windows, dev)
    if start > 0:
        saved = state.load_inputs()
        if saved is None or saved.shape != inputs.hidden.shape:
            raise CheckpointError(f"resume state {state.root} is damaged; pass --restart or delete it")
        inputs.hidden = saved
    inputs.hidden = resident_inputs(inputs.hidden, dev, blocks)

    with progress_bar(progress) as bar:
        outer = bar.add_task("blocks", total=len(blocks), completed=start)
        for i in range(start, len(blocks)):
            t0 = time.perf_counter()
            bname = f"{prefix}.{i}"
            inner = bar.add_task(f"  {bname}", total=len(block_linears[i]))

            def on_layer(full: str, rec: dict, _inner=inner) -> None:
                bar.update(_inner, description=f"  {full}", advance=1)
                logger.info("%s: loss %.6g, density %.4f, %.2f s", full, rec["loss"], rec["density"],
                            rec["seconds"])

            block_records, outs = prune_block(
                blocks[i], inputs, cfg, prefix=bname, linears=block_linears[i], plan=plan, device=dev,
                sequential=sequential, strict=strict, on_layer=on_layer, on_hessian=on_hessian,
            )
            inputs.hidden = outs
            records.update(block_records)
            seconds = time.perf_counter() - t0
            logger.info("%s: %d layers pruned in %.1f s (block %d/%d)", bname, len(block_records), seconds,
                        i + 1, len(blocks))
            if state is not None:
                weights = {f"{n}.weight": m.weight.data for n, m in block_linears[i].items()}
                last = i == len(blocks) - 1
                state.commit_block(i, weights, block_records, None if last else outs, seconds)
            bar.remove_task(inner)
            bar.advance(outer)
            if after_block is not None:
                after_block(i)
            if crash_after is not None and crash_after.strip() == str(i):
                raise SimulatedCrash(f"simulated crash after block {i} ({CRASH_ENV})")
    return records


def prune_model(
    model_dir: str | Path,
    out_dir: str | Path,
    cfg: Any,
    calib_path: str | Path | None = None,
    nsamples: int = 128,
    seqlen: int = 2048,
    seed: int = 0,
    device: str | torch.device = "auto",
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    dtype: str | torch.dtype | None = None,
    restart: bool = False,
    after_block: Callable[[int], None] | None = None,
    *,
    plan: dict[str, Any] | None = None,
    sequential: str = "true",
    dense_layers: str | None = None,
    budget_alloc: str = "uniform",
    axes: str | None = None,
    alloc_unit: str = "block",
    on_resume: Callable[[str, Path], None] | None = None,
    source: str | None = None,
) -> dict:
    """Prune the model ``model_dir`` and write a Spense checkpoint to ``out_dir``.

    ``dense_layers`` / ``budget_alloc`` / ``axes`` build a per-linear plan by measured sensitivity
    (:func:`spense.sensitivity.build_plan`) unless ``plan`` is given; the plan is kept in
    ``OUT.partial/plan.json`` so that a resumed run uses the same one, and recorded in ``spense.json``
    (``plan`` and ``allocation``).

    ``model_dir``: a local HF directory, a ``.gguf`` file or a built-in name
    (:func:`spense.models.resolve_model`); the checkpoint keeps the source's dtype.  ``source``: that name as the
    user gave it, where ``model_dir`` is already resolved (recorded as ``source_model``).

    Resumable: the state lives in ``OUT.partial/`` (see :class:`spense.resume.ResumeState`) and is
    removed once the checkpoint is written; ``restart`` discards it first; ``on_resume(kept, root)`` is called
    when the state holds an interrupted run's work (``kept``: what, in words, :meth:`ResumeState.kept`).
    Returns the manifest.
    """
    import spense
    from spense import data, io
    from spense.models import resolve_model, source_of

    t0 = time.perf_counter()
    if nsamples <= 0:  # the options first, then the files: a bad output is refused before any work
        raise InputError(f"nsamples must be positive, got {nsamples}")
    if seqlen < 2:
        raise InputError(f"seqlen must be >= 2, got {seqlen}")
    cfg.validate()
    check_sequential(sequential)
    check_plan_options(cfg, dense_layers, budget_alloc, axes)
    cdtype = parse_dtype(dtype)
    dev = resolve_device(device)
    source = source_of(source if source is not None else model_dir)
    model_dir = resolve_model(model_dir)
    out_dir = Path(out_dir).expanduser().resolve()
    inputs = {"the calibration text": calib_path}  # a file of the user's that replacing OUT would delete
    io.check_out_dir(model_dir, out_dir, overwrite, inputs=inputs)  # paths only: where a lock could not be made
    with out_lock(out_dir):  # one run per output: a second prune into OUT would share OUT.partial
        recover_stale(out_dir)  # a killed run's swap undone before the output is checked again, not after the work
        io.check_out_dir(model_dir, out_dir, overwrite, inputs=inputs)
        calib_path = Path(calib_path) if calib_path is not None else data.default_calib_path()

        text = data.read_text(calib_path)
        tokenizer = data.load_tokenizer(model_dir)
        model = load_model(model_dir, cdtype)
        seqlen = clip_seqlen(model.config, seqlen)
        ids = data.tokenize(tokenizer, text)
        windows = data.calibration_windows(ids, nsamples, seqlen, seed, bos=data.bos_id(tokenizer))
        sha = data.text_fingerprint(text)

        info = {
            "model": str(model_dir),
            "model_files": file_stamps(model_dir),  # weights changed in place: not resumed
            "config": cfg.to_dict(),
            "calibration": {"sha256": sha, "nsamples": nsamples, "seqlen": seqlen, "seed": seed,
                            "bos": data.bos_id(tokenizer)},
            "version": spense.__version__,
            "dtype": str(cdtype or torch.float32),
            "device": dev.type,
            "strict": strict,
            "sequential": sequential,
            "plan": _plan_dict(plan),
            "plan_options": {"dense_layers": dense_layers, "budget_alloc": budget_alloc, "axes": axes,
                             "unit": alloc_unit},
        }
        state = ResumeState(partial_dir(out_dir), fingerprint(info), info, restart=restart)
        kept = state.kept()
        if kept and on_resume is not None:
            on_resume(kept, state.root)
        allocation = None
        try:
            if plan is None:
                plan, allocation = _planned(state.root, model, windows, cfg, dev, strict, dense_layers=dense_layers,
                                            budget_alloc=budget_alloc, axes=axes, unit=alloc_unit, progress=progress)
            records = prune_loaded(model, windows, cfg, dev, strict, progress, state, after_block, plan=plan,
                                   sequential=sequential)
        except BaseException:
            state.drop_if_empty()  # a run stopped before it saved anything leaves no folder behind
            raise

        manifest = build_manifest(cfg, records, model_dir, calib_path, sha, windows, seed, state.seconds,
                                  sequential=sequential, plan=plan, source=source)
        manifest["allocation"] = allocation
        manifest["wall_seconds"] = time.perf_counter() - t0
        model.to(source_dtype(model_dir))
        io.save_checkpoint(model, model_dir, out_dir, manifest, overwrite=overwrite)
        shutil.rmtree(state.root, ignore_errors=True)
        return manifest


def _planned(root: Path, model: nn.Module, windows: torch.Tensor, cfg: Any, dev: torch.device, strict: bool,
             **options: Any) -> tuple[dict[str, Any] | None, dict | None]:
    """The measured plan of this run: read back from ``root/plan.json`` when an interrupted run saved
    it (curves re-measured on resume could differ in the last bit and pick another plan), else built
    by :func:`spense.sensitivity.build_plan` and saved there atomically before any pruning.  The
    measurement itself resumes after its last finished block (``root/sensitivity/``, removed once the
    plan is saved)."""
    import json

    from spense.atomic import atomic_write_bytes
    from spense.methods import PruneConfig

    path = root / "plan.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            plan = {k: PruneConfig.from_dict(v) for k, v in saved["plan"].items()} if saved["plan"] else None
            return plan, saved["allocation"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"resume state {root} is damaged ({e}); pass --restart or delete it") from e
    plan, allocation = build_plan(model, windows, cfg, dev, strict=strict, checkpoint=root / "sensitivity",
                                  **options)
    if plan is not None:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({"plan": _plan_dict(plan), "allocation": allocation}).encode())
    shutil.rmtree(root / "sensitivity", ignore_errors=True)
    return plan, allocation


def _plan_dict(plan: dict[str, Any] | None) -> dict[str, dict] | None:
    return {k: plan[k].to_dict() for k in sorted(plan)} if plan else None


def build_manifest(
    cfg: Any, records: dict[str, dict], model_dir: str | Path, calib_path: str | Path, calib_sha256: str,
    windows: torch.Tensor, seed: int, seconds: float, *, sequential: str = "true",
    plan: dict[str, Any] | None = None, source: str | None = None,
) -> dict:
    """The run part of ``spense.json`` (io adds format, version and tensor hashes); ``source``: the model as the user
    named it (:func:`spense.models.source_of`; default: ``model_dir``)."""
    return {
        "method": cfg.method,
        "config": cfg.to_dict(),
        "method_config": method_config(cfg),
        "sequential": sequential,
        "plan": _plan_dict(plan),
        "calibration": {
            "path": str(calib_path), "sha256": calib_sha256, "nsamples": int(windows.shape[0]),
            "seqlen": int(windows.shape[1]), "seed": int(seed),
        },
        "source_model": source or str(model_dir),  # builtin:NAME or the .gguf, not the conversion cache's folder
        "source_dir": str(model_dir),
        "layers": records,
        "seconds": float(seconds),
    }


def linear_density(model: nn.Module, block_size: int = 64, m: int = 4) -> float:
    """Measured nonzero fraction over the prunable linears of all blocks."""
    _, blocks = find_blocks(model)
    nnz = total = 0
    for b in blocks:
        for mod in find_linears(b, block_size, m, warn=False).values():
            nnz += int((mod.weight != 0).sum())
            total += mod.weight.numel()
    return nnz / total if total else 1.0


def fresh_copy(model: nn.Module) -> nn.Module:
    """An independent copy of a loaded model (the demo prunes one per method)."""
    return copy.deepcopy(model)
