"""Checkpoint I/O: atomic write (through :mod:`spense.atomic`), ``spense.json`` manifest with per-tensor SHA-256,
validate, load.

A Spense checkpoint is an ordinary Hugging Face model directory (``config.json``, safetensors
weights stored dense-with-zeros, tokenizer files) plus ``spense.json``::

    {
      "format": "spense", "format_version": 1, "library_version": "0.1.0",
      "tensors": {"<safetensors name>": "<sha256 hex of the raw little-endian bytes>", ...},
      "layers": {
        "<module name>": {"weight": "<safetensors name>", "transposed": false,
                          "layout": SpenseLayout.to_dict(), "method": ..., "strategy": ...,
                          "dense_ratio": ..., "loss": ..., "density": ...},
        ...
      },
      ... anything else the pipeline passes through (method, config, calibration, timings, ...)
    }

``transposed`` marks GPT-2 ``Conv1D`` weights, stored ``(K, N)``; the layout always describes the
``(N, K)`` view.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from spense.atomic import fsync_dir, plain_mode, recover_stale, swap_in
from spense.errors import CheckpointError, FormatError, InputError
from spense.format import PackedSpense, SpenseLayout, density, unpack
from spense.log import progress as progress_bar
from spense.outdir import HF_WEIGHT_NAMES, MANIFEST, check_out_dir, check_writable, foreign_files  # noqa: F401
from spense.side_files import copy_side_files

FORMAT_NAME = "spense"
FORMAT_VERSION = 1


# -- model directories ------------------------------------------------------------------------
def _weight_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.safetensors"))
    return files or sorted(path.glob("pytorch_model*.bin"))


def check_model_dir(path: str | os.PathLike) -> Path:
    """Resolve ``path`` and check it is a local Hugging Face model directory (InputError if not)."""
    p = Path(path).expanduser()
    hint = "it must be a local Hugging Face model directory (config.json + weights); spense never downloads"
    if not p.exists():
        raise InputError(f"model path {p} does not exist; {hint}")
    if not p.is_dir():
        raise InputError(f"model path {p} is not a directory; {hint}")
    if not (p / "config.json").is_file():
        raise InputError(f"model directory {p} has no config.json; {hint}")
    if not _weight_files(p):
        raise InputError(
            f"model directory {p} has no weights (*.safetensors or pytorch_model*.bin); {hint}"
        )
    return p.resolve()


# -- hashing / reading ------------------------------------------------------------------------
def tensor_sha256(t: torch.Tensor) -> str:
    """SHA-256 (hex) of the raw little-endian bytes of ``t`` (contiguous, on CPU; any dtype)."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return hashlib.sha256(flat.view(torch.uint8).numpy().data).hexdigest()


def _iter_safetensors(path: Path) -> Iterator[tuple[Path, str, torch.Tensor]]:
    """Yield ``(file, name, tensor)`` for every tensor of every ``*.safetensors`` in ``path``.

    Tensors are read one at a time (memory stays at one tensor); a truncated or corrupt file
    raises :class:`CheckpointError` naming it.
    """
    from safetensors import safe_open

    for f in sorted(Path(path).glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt", device="cpu") as st:
                for name in st.keys():
                    yield f, name, st.get_tensor(name)
        except (CheckpointError, FormatError):
            raise
        except Exception as e:  # SafetensorError, OSError, RuntimeError from torch on bad data
            raise CheckpointError(
                f"cannot read {f.name} in {path}: {e}; the file is truncated or corrupt, "
                f"re-create the checkpoint"
            ) from e


def _hash_and_check(
    path: Path, layers: dict[str, Any], expected: dict[str, str] | None = None, progress: bool = False
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """One pass over the stored tensors: SHA-256 of each, checked against ``expected`` when given,
    and every layer record checked against its weight.  Returns ``(hashes, summary rows)``; ``progress``: a bar
    over the ``expected`` tensors on a terminal.
    """
    by_tensor = _layer_records(layers)
    hashes: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    with progress_bar(progress and expected is not None) as bar:
        task = bar.add_task("verifying tensors", total=len(expected or ()))
        for f, tname, t in _iter_safetensors(path):
            _check_tensor(f, tname, t, hashes, expected, by_tensor, rows)
            bar.advance(task)
    lost = [f"{n} -> {r['weight']!r}" for n, r in layers.items() if r["weight"] not in hashes]
    if lost:
        raise CheckpointError(
            f"layer records point at tensors that are not in the weights: {', '.join(lost[:5])}"
        )
    order = {n: i for i, n in enumerate(layers)}
    rows.sort(key=lambda r: order[r["name"]])
    return hashes, rows


def _check_tensor(f: Path, tname: str, t: torch.Tensor, hashes: dict, expected: dict | None, by_tensor: dict,
                  rows: list) -> None:
    """Hash one stored tensor into ``hashes`` (checked against ``expected``) and check the layer records of it."""
    if tname in hashes:
        raise CheckpointError(f"tensor {tname!r} is stored twice (second copy in {f.name})")
    hashes[tname] = h = tensor_sha256(t)
    if expected is not None:
        if tname not in expected:
            raise CheckpointError(
                f"{f.name}: tensor {tname!r} is not listed in {MANIFEST} (extra tensor)"
            )
        if h != expected[tname]:
            raise CheckpointError(
                f"{f.name}: tensor {tname!r} does not match its SHA-256 in {MANIFEST}; the "
                f"checkpoint was modified or corrupted, re-create it"
            )
    for lname, rec in by_tensor.get(tname, []):
        rows.append(_check_layer(lname, rec, t))


# -- writing ----------------------------------------------------------------------------------
def _write_manifest(tmp: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash the written tensors, check the layer records against them, write ``spense.json``."""
    import spense

    m = copy.deepcopy(manifest)
    m["format"] = FORMAT_NAME
    m["format_version"] = FORMAT_VERSION
    m["library_version"] = spense.__version__
    m.setdefault("layers", {})
    m["tensors"], _ = _hash_and_check(tmp, m["layers"])
    with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(m, fh, indent=2)
        fh.write("\n")
    return m


def publish(tmp: Path, source: Path, out: Path, overwrite: bool) -> None:
    """Make the finished checkpoint in ``tmp`` durable (fsync), re-check ``out`` (it may have appeared
    while ``tmp`` was written) and move it into place with :func:`swap_in`."""
    plain_mode(tmp)
    fsync_dir(tmp)
    check_out_dir(source, out, overwrite)
    swap_in(tmp, out)


def save_checkpoint(
    model,
    source_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    manifest: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write ``model`` + tokenizer files of ``source_dir`` + ``spense.json`` to ``out_dir`` atomically.

    The checkpoint is built in ``.{out}.tmp-<pid>`` next to ``out_dir`` and renamed in at the end;
    on any failure the temp dir is removed and ``out_dir`` is left as it was.  ``manifest`` is not
    modified: the written copy gains ``format``, ``format_version``, ``library_version`` and
    ``tensors`` (SHA-256 of every stored tensor).  ``source_dir`` is only read.
    """
    source = Path(source_dir).expanduser().resolve()
    out = Path(out_dir).expanduser().resolve()
    if out.parent.is_dir():
        recover_stale(out)
    check_out_dir(source, out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        copy_side_files(source, tmp)
        _write_manifest(tmp, manifest)
        publish(tmp, source, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# -- validation -------------------------------------------------------------------------------
def _json_object(f: Path) -> dict[str, Any]:
    """The JSON object in ``f``; :class:`CheckpointError` naming ``f`` if it is not UTF-8 JSON or not an object."""
    try:
        m = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{f} is not valid JSON: {e}") from e
    if not isinstance(m, dict):
        raise CheckpointError(f"{f} must hold a JSON object, got {type(m).__name__}")
    return m


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of checkpoint ``path``, checked for form (format, version, tensor hashes listed, config.json,
    weight files present) without reading a tensor: :class:`CheckpointError` naming what is wrong."""
    path = Path(path).expanduser()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        partial = path.with_name(path.name + ".partial")
        if not path.exists() and partial.is_dir():
            what += f"; {partial} holds an interrupted `spense prune`: rerun that command to finish it"
        raise CheckpointError(f"checkpoint {path} {what}")
    mf = path / MANIFEST
    if not mf.is_file():
        raise CheckpointError(
            f"{path} has no {MANIFEST}; it is not a Spense checkpoint (create one with `spense prune`)"
        )
    m = _json_object(mf)
    if "format" not in m:
        raise CheckpointError(f"{mf} has no \"format\": {FORMAT_NAME!r} entry; it is not a Spense manifest")
    if m["format"] != FORMAT_NAME:
        raise CheckpointError(f"{mf}: format is {m['format']!r}, expected {FORMAT_NAME!r}")
    if type(m.get("format_version")) is not int or m["format_version"] != FORMAT_VERSION:  # not 1.0, not true
        raise CheckpointError(
            f"{mf}: format_version {m.get('format_version')!r} is not supported (this spense reads "
            f"version {FORMAT_VERSION}); upgrade spense or re-create the checkpoint"
        )
    for key in ("tensors", "layers"):
        if not isinstance(m.get(key), dict):
            raise CheckpointError(f"{mf}: {key!r} must be a JSON object")
    bad = sorted(k for k, v in m["tensors"].items() if not (isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v)))
    if bad:
        raise CheckpointError(f"{mf}: tensor {bad[0]!r} has no sha256 (64 hex digits), got "
                              f"{m['tensors'][bad[0]]!r} ({MANIFEST} edited or corrupt)")
    if not isinstance(m.get("packed", False), bool):
        raise CheckpointError(f"{mf}: 'packed' must be true or false, got {m['packed']!r}")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"checkpoint {path} has no config.json")
    _json_object(path / "config.json")  # transformers would fail on it later, with a traceback
    if not list(path.glob("*.safetensors")):
        raise CheckpointError(f"checkpoint {path} has no *.safetensors weights")
    if not m.get("packed") and not any((path / f).is_file() for f in HF_WEIGHT_NAMES):
        raise CheckpointError(f"checkpoint {path} has no {' or '.join(HF_WEIGHT_NAMES)}, the names transformers "
                              "loads its weights from (a weights file renamed?)")
    return m


def _layer_records(layers: Any) -> dict[str, list[tuple[str, dict]]]:
    """``{tensor name: [(layer name, record), ...]}``; CheckpointError for malformed records."""
    if not isinstance(layers, dict):
        raise CheckpointError("'layers' must be a JSON object of layer records")
    by_tensor: dict[str, list[tuple[str, dict]]] = {}
    for name, rec in layers.items():
        if not isinstance(rec, dict) or not isinstance(rec.get("weight"), str) or "layout" not in rec:
            raise CheckpointError(f"layer {name}: record needs a 'weight' tensor name and a 'layout'")
        for key, hi in (("density", 1.0), ("loss", math.inf)):  # read by `spense validate` / `inspect`
            v = rec.get(key)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= hi
                                      and not math.isnan(v)):
                raise CheckpointError(f"layer {name}: {key!r} must be a number in [0, {hi:g}], got {v!r} "
                                      f"({MANIFEST} edited or corrupt)")
        by_tensor.setdefault(rec["weight"], []).append((name, rec))
    return by_tensor


def _check_layer(name: str, rec: dict, t: torch.Tensor) -> dict[str, Any]:
    """Check one stored weight against its layer record; return its summary row."""
    try:
        lay = SpenseLayout.from_dict(rec["layout"])
    except FormatError as e:
        raise FormatError(f"layer {name}: {e}") from e
    w = t.t() if rec.get("transposed", False) else t
    if tuple(w.shape) != lay.shape:
        raise FormatError(
            f"layer {name}: stored weight {rec['weight']} has shape {tuple(t.shape)}"
            f"{' (transposed)' if rec.get('transposed') else ''}, layout says {lay.shape}"
        )
    try:
        lay.check_weight(w)
    except FormatError as e:
        raise FormatError(f"layer {name}: {e}") from e
    return {
        "name": name,
        "shape": list(lay.shape),
        "axis": lay.axis,
        "n_dense": lay.n_dense,
        "dense_ratio": lay.dense_ratio,
        "structural_density": lay.structural_density,
        "density": density(w),
        "loss": rec.get("loss"),
        "method": rec.get("method"),
        "strategy": rec.get("strategy"),
    }


def _scan(path: str | os.PathLike, progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Full check of a checkpoint; returns ``(manifest, per-layer summary rows)``; ``progress``: a bar on a
    terminal."""
    p = Path(path).expanduser()
    m = read_manifest(p)
    if m.get("packed"):
        return _scan_packed(p, m, progress)
    hashes, rows = _hash_and_check(p, m["layers"], expected=m["tensors"], progress=progress)
    missing = sorted(set(m["tensors"]) - set(hashes))
    if missing:
        raise CheckpointError(
            f"{len(missing)} tensor(s) listed in {MANIFEST} are missing from the weights, "
            f"e.g. {missing[0]!r}; the checkpoint is incomplete, re-create it"
        )
    return m, rows


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of every ``*.safetensors`` in ``path`` (CPU); CheckpointError for a corrupt file,
    no weights, or a tensor stored twice."""
    out: dict[str, torch.Tensor] = {}
    for f, name, t in _iter_safetensors(Path(path)):
        if name in out:
            raise CheckpointError(f"tensor {name!r} is stored twice (second copy in {f.name})")
        out[name] = t
    if not out and not list(Path(path).glob("*.safetensors")):
        raise CheckpointError(f"{path} has no *.safetensors weights")
    return out


def read_packed(path: str | os.PathLike) -> tuple[dict, dict[str, PackedSpense], dict[str, torch.Tensor]]:
    """A packed checkpoint (``spense pack``), read without any GPU code: ``(manifest, {layer:
    PackedSpense}, other tensors)``.  The SHA-256 of every tensor and each layer's packed metadata
    are checked (CheckpointError / FormatError naming the layer)."""
    d = Path(path).expanduser()
    m = read_manifest(d)
    if not m.get("packed"):
        raise CheckpointError(f"{d} is not a packed checkpoint ({MANIFEST} has no \"packed\": true)")
    tensors = read_tensors(d)
    exp = m["tensors"]
    if set(exp) != set(tensors):
        miss = sorted(set(exp) - set(tensors))[:3]
        extra = sorted(set(tensors) - set(exp))[:3]
        raise CheckpointError(f"{d}: stored tensors do not match the manifest (missing {miss}, extra {extra})")
    for k, t in tensors.items():
        if tensor_sha256(t) != exp[k]:
            raise CheckpointError(f"{d}: tensor {k!r} does not match its SHA-256 in {MANIFEST}; the checkpoint was "
                                  "modified or corrupted, re-create it (`spense pack`)")
    layers = {}
    for name, rec in m["layers"].items():
        try:
            lay = SpenseLayout.from_dict(rec["layout"])
            p = PackedSpense.from_tensors(lay, tensors, rec["weight"])
        except FormatError as e:
            raise FormatError(f"layer {name}: {e}") from e
        for k in rec.get("packed_tensors", []):
            tensors.pop(k, None)
        layers[name] = p
    return m, layers, tensors


def _scan_packed(p: Path, m: dict[str, Any], progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Packed checkpoint: :func:`read_packed`, then the usual per-layer check on the unpacked weight."""
    _, layers, _ = read_packed(p)
    rows = []
    with progress_bar(progress) as bar:
        task = bar.add_task("checking layers", total=len(layers))
        for name, pk in layers.items():
            rec = dict(m["layers"][name], transposed=False)  # unpack() gives the (out, in) weight
            rows.append(_check_layer(name, rec, unpack(pk, dtype=torch.float32)))
            bar.advance(task)
    return m, rows


def check_checkpoint(path: str | os.PathLike, progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`validate_checkpoint` and :func:`summarize_checkpoint` of one pass: ``(manifest, rows)``, the rows'
    densities measured on the stored weights, not read from the manifest; ``progress``: a bar on a terminal."""
    return _scan(path, progress)


def validate_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Check a Spense checkpoint completely and return its manifest.

    Raises :class:`CheckpointError` for a missing directory / ``spense.json`` / ``config.json`` /
    weights, malformed JSON, an unknown format or version, a truncated or corrupt safetensors file,
    or a tensor that is missing, extra or whose SHA-256 differs; :class:`FormatError` (naming the
    layer) when a layer's layout is malformed, does not match its stored weight's shape, or its
    sparse region breaks 2:4.
    """
    return _scan(path)[0]


def summarize_checkpoint(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Validate a checkpoint and return one row per pruned layer (for ``spense inspect``).

    Keys: ``name, shape, axis, n_dense, dense_ratio, structural_density, density`` (measured
    nonzero fraction), ``loss, method, strategy``.
    """
    return _scan(path)[1]


# -- loading ----------------------------------------------------------------------------------
#: loaders of checkpoint kinds that need a higher floor (``"packed"``: registered by
#: :mod:`spense.runtime.checkpoint` when it is imported; io never imports the runtime)
_LOADERS: dict[str, Callable[..., Any]] = {}


def checkpoint_kind(manifest: dict[str, Any]) -> str:
    """``"packed"`` for a ``spense pack`` checkpoint, ``"dense"`` (dense with zeros) otherwise."""
    return "packed" if manifest.get("packed") else "dense"


def register_loader(kind: str, load: Callable[..., Any]) -> None:
    """Register ``load(path, device=, dtype=)`` for checkpoints of ``kind`` (see :func:`checkpoint_kind`)."""
    _LOADERS[kind] = load


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", dtype=None):
    """Validate, then ``AutoModelForCausalLM.from_pretrained`` (local only) on ``device`` in eval mode.

    A packed checkpoint loads through the loader registered for its kind (``import
    spense.runtime.checkpoint`` registers :func:`spense.runtime.load_packed`), which checks each tensor's
    SHA-256 and each layer's packed metadata as it reads them.

    ``dtype=None`` keeps the stored dtype.
    """
    from transformers import AutoModelForCausalLM

    from spense.weights import check_load_fits

    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    kind = checkpoint_kind(read_manifest(path))
    check_load_fits(path, dtype if isinstance(dtype, torch.dtype) else None)  # packed: each part in dtype
    if kind != "dense":  # its loader checks every tensor as it reads them (read_packed): no second pass here
        if kind not in _LOADERS:
            raise CheckpointError(
                f"{path} is a {kind} checkpoint; load it with spense.runtime.load_packed "
                f"(import spense.runtime.checkpoint first)"
            )
        return _LOADERS[kind](path, device=device, dtype=dtype).eval()
    validate_checkpoint(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(Path(path).expanduser()), dtype=dtype if dtype is not None else "auto", local_files_only=True,
            trust_remote_code=False,
        )
    except Exception as e:
        raise CheckpointError(f"transformers cannot load {path}: {e}") from e
    return model.to(device).eval()
