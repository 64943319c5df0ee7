"""Packed Spense checkpoints: ``pack_checkpoint`` (dense-with-zeros -> packed) and ``load_packed``.

A packed checkpoint is the spense.io checkpoint directory with, in ``spense_packed.safetensors``, every
pruned weight ``<name>`` replaced by ``<name>.values``, ``<name>.meta``, ``<name>.dense`` (and
``<name>.scale`` for FP8), see :mod:`spense.format`; all other tensors are unchanged.  The file is not named
``model.safetensors`` so that transformers (and the tools built on it) refuse the folder instead of loading it
with the pruned linears randomly initialised; packed checkpoints written before (``model.safetensors``) still
load.  The manifest
``spense.json`` gets ``"packed": true``, ``"tensors"`` = sha256 of every stored tensor (packed ones
included) and, per layer, ``"packed_tensors": [...]``.  Loading never unpacks: pruned linears
become :class:`~spense.runtime.SpenseLinear` built from the stored packed tensors.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from spense.atomic import out_lock, recover_stale
from spense.errors import CheckpointError, FormatError, first_line
from spense.format import SpenseLayout, pack
from spense.io import (MANIFEST, check_out_dir, publish, read_packed, read_tensors, register_loader,
                       tensor_sha256, validate_checkpoint)

PACKED_FILE = "spense_packed.safetensors"  # a name transformers does not read
__all__ = ["pack_checkpoint", "load_packed", "read_packed"]


def pack_checkpoint(src_dir, out_dir, fp8: bool = False, overwrite: bool = False) -> Path:
    """Read the dense-with-zeros checkpoint ``src_dir`` (validated) and write its packed form.

    ``out_dir`` gets the same checks as ``spense prune --out`` (never the source, never an existing
    dir unless ``overwrite``) and is written atomically (temp dir + rename), by one run at a time
    (:func:`spense.atomic.out_lock`)."""
    src, out = Path(src_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    check_out_dir(src, out, overwrite)  # paths only: a bad --out is refused before the source's weights are hashed
    with out_lock(out):  # one writer per output; what follows touches OUT only while holding it
        recover_stale(out)  # a killed pack's temp folder, or a swap it stopped halfway
        check_out_dir(src, out, overwrite)  # again, with a swap stopped halfway undone
        return _write_packed(src, out, fp8, overwrite)


def _write_packed(src: Path, out: Path, fp8: bool, overwrite: bool) -> Path:
    from safetensors.torch import save_file

    m = validate_checkpoint(src)
    if m.get("packed"):
        raise CheckpointError(f"{src} is already packed")
    tensors = read_tensors(src)
    m = json.loads(json.dumps(m))
    for name, rec in m["layers"].items():
        tname = rec["weight"]
        w = tensors.pop(tname)
        if rec.get("transposed", False):
            w = w.t()
        lay = SpenseLayout.from_dict(rec["layout"])
        try:
            p = pack(w.contiguous(), lay, fp8=fp8)
        except FormatError as e:
            raise FormatError(f"layer {name}: {e}") from e
        pt = p.tensors(tname)
        tensors.update(pt)
        rec["packed_tensors"] = sorted(pt)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for f in src.iterdir():
            if f.is_file() and f.suffix != ".safetensors" and f.name not in (MANIFEST, "model.safetensors.index.json"):
                shutil.copy2(f, tmp / f.name)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / PACKED_FILE), metadata={"format": "pt"})
        m["packed"] = True
        m["packed_fp8"] = bool(fp8)
        m["tensors"] = {k: tensor_sha256(v) for k, v in sorted(tensors.items())}
        (tmp / MANIFEST).write_text(json.dumps(m, indent=1))
        publish(tmp, src, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_packed(dir_, device="cpu", dtype=None, backend: str = "auto"):
    """Load a packed checkpoint as a model whose pruned linears are ``SpenseLinear`` (no unpack).

    ``dtype`` applies to the unpruned tensors and the (non-FP8) packed values/dense region.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from spense.hf import parse_dtype, resolve_device
    from spense.runtime.linear import SpenseLinear

    device, dtype = resolve_device(device), parse_dtype(dtype)  # a bad one is refused before any reading
    d = Path(dir_)
    m, layers, rest = read_packed(d)
    try:
        cfg = AutoConfig.from_pretrained(str(d), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # transformers raises OSError / ValueError for an unreadable or invalid config.json
        raise CheckpointError(f"{d}: cannot read config.json ({first_line(e)})") from None
    try:
        from transformers.modeling_utils import no_init_weights
    except ImportError:  # pragma: no cover
        no_init_weights = None
    if no_init_weights is not None:
        with no_init_weights():
            model = AutoModelForCausalLM.from_config(cfg)
    else:  # pragma: no cover
        model = AutoModelForCausalLM.from_config(cfg)
    if dtype is not None:
        model = model.to(dtype)
    mods = dict(model.named_modules())
    for name, p in layers.items():
        if name not in mods:
            raise CheckpointError(f"packed layer {name!r} is not a module of the model")
        old = mods[name]
        bias = getattr(old, "bias", None)
        bkey = name + ".bias"
        if bkey in rest:
            bias = rest.pop(bkey)
        if dtype is not None and p.scale is None:
            p = p.to(dtype=dtype)
        new = SpenseLinear(p, bias, backend=backend, name=name)
        parent_name, _, child = name.rpartition(".")
        setattr(mods[parent_name] if parent_name else model, child, new)
    if dtype is not None:
        rest = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in rest.items()}
    missing, unexpected = model.load_state_dict(rest, strict=False)
    unexpected = [u for u in unexpected]
    if unexpected:
        raise CheckpointError(f"packed checkpoint has tensors the model does not know: {unexpected[:5]}")
    spense_keys = {n for n, mod in model.named_modules() if isinstance(mod, SpenseLinear)}
    real_missing = [k for k in missing if k.rpartition(".")[0] not in spense_keys]
    tied = getattr(model, "_tied_weights_keys", None) or []
    real_missing = [k for k in real_missing if not any(k == t or k.endswith(t) for t in tied)]
    if real_missing:
        raise CheckpointError(f"packed checkpoint misses tensors: {real_missing[:5]}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    model.spense_manifest = m
    return model.to(device).eval()


def _load_packed_kind(path, device="cpu", dtype=None):
    """io's loader for packed checkpoints: CUDA backends chosen automatically, reference on CPU."""
    backend = "auto" if torch.device(device).type == "cuda" else "reference"
    return load_packed(path, device=device, dtype=dtype, backend=backend)


register_loader("packed", _load_packed_kind)
