"""What the pruning commands share: the option enums, help texts and checkpoint helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from spense.errors import InputError
from spense.models import BUILTIN_MODELS
from spense.registry import AxisChoice, MethodChoice, SalienceChoice, SequentialChoice, StrategyChoice

# option enums: generated from spense.registry (the one vocabulary)
Method, Strategy, Axis, Salience, Sequential = MethodChoice, StrategyChoice, AxisChoice, SalienceChoice, \
    SequentialChoice
SEQUENTIAL_HELP = ("true: each layer group's Hessian comes from the block with the earlier groups already "
                   "pruned (true-sequential, default); block: every group's Hessian from one forward pass "
                   "of the unpruned block (llm-compressor's SparseGPT protocol, for side-by-side runs).")


def load_checkpoint(path: Path, device, dtype=None):
    """io.load_checkpoint with the packed-checkpoint loader of the runtime registered."""
    import spense.runtime.checkpoint  # noqa: F401  (registers the "packed" kind with spense.io)
    from spense import io

    return io.load_checkpoint(path, device, dtype)


def load_any(model: str, device, dtype=None):
    """``(model, its directory)``: a Spense checkpoint (validated) or any model source, on ``device``."""
    import torch

    from spense import io
    from spense.hf import load_model
    from spense.models import resolve_model

    path = Path(model).expanduser()
    if (path / io.MANIFEST).is_file():
        if io.read_manifest(path).get("packed"):  # its loader checks every tensor it reads
            if dtype is None and torch.device(device).type == "cpu":  # on a GPU: the stored dtype its kernels take
                dtype = torch.float32
            return load_checkpoint(path, device, dtype), path
        io.validate_checkpoint(path)
    model_dir = resolve_model(model)
    return load_model(model_dir, dtype).to(device), model_dir


def check_source(model_dir: Path, cmd: str) -> None:
    """The model to prune, where it is a Spense checkpoint (a ``spense.json`` beside its weights): checked as
    ``spense validate`` checks it (a damaged one is refused, never pruned as it is), and refused where it is packed
    (``spense pack``): its linears are not stored as dense weights, so loading it as a Hugging Face model would give
    random ones."""
    from spense import io

    mf = Path(model_dir) / io.MANIFEST
    if not (mf.exists() or mf.is_symlink()):
        return
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and io.checkpoint_kind(manifest) == "packed":
        raise InputError(f"{model_dir} is a packed Spense checkpoint: {cmd} needs dense weights; give the source "
                         "model or a checkpoint written without --packed")
    io.validate_checkpoint(model_dir)


def summary_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Layers, weighted density, dense share (the dense regions' weights over all) and summed OBS loss of per-layer
    rows: :func:`spense.io.check_checkpoint`'s
    (``shape``, the density measured on the weights) or a manifest's layer records (``layout.shape``). A loss
    that was not recorded (null) makes the sum None."""
    total = nnz = dense = 0.0
    loss: float | None = 0.0
    n_layers = 0
    for r in rows:
        n, k = r["shape"] if "shape" in r else r["layout"]["shape"]
        total += n * k
        nnz += r["density"] * n * k
        lay = r.get("layout")
        if lay:  # the dense region: whole rows (k weights each) or whole columns (n each)
            dense += len(lay["dense_idx"]) * (k if lay["axis"] == "rows" else n)
        loss = None if loss is None or r.get("loss") is None else loss + r["loss"]
        n_layers += 1
    return {"layers": n_layers, "density": nnz / total if total else 1.0, "loss": loss,
            "dense_share": dense / total if total else 0.0}


MODEL_SOURCES = ("a local Hugging Face directory, a .gguf file or a built-in name (" + ", ".join(BUILTIN_MODELS)
                 + ")")
MODEL_HELP = f"Model: {MODEL_SOURCES}."


def check_min(**options: tuple[int | None, int]) -> None:
    """Refuse an option below its least value before any file is read: ``check_min(seqlen=(seqlen, 2))`` raises
    ``--seqlen must be >= 2, got 1``. A value of None (the option's default) passes."""
    for name, (value, least) in options.items():
        if value is not None and value < least:
            raise InputError(f"--{name.replace('_', '-')} must be >= {least}, got {value}")
