"""A model folder's safetensors weights, read from their headers only: which files (:func:`safetensors_files`),
whether each is whole (:func:`check_weights_readable`), how many elements of each dtype they hold
(:func:`weight_counts`), and whether they fit in the host's memory once loaded (:func:`check_load_fits`).

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON (each tensor's dtype, shape
and ``data_offsets``), then the data; the checks compare the JSON with the file's size without reading the data.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from spense.errors import InputError, first_line
from spense.hostmem import check_fits

if TYPE_CHECKING:
    import torch

#: the floating dtypes a load may convert (the rest keep their size)
FLOATS = ("F32", "BF16", "F16")


def safetensors_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a model folder: those its ``model.safetensors.index.json`` names, else every
    ``*.safetensors`` in it."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as e:
            raise InputError(f"{index} is not a valid safetensors index ({e})") from e
        return [model_dir / n for n in names]
    return sorted(model_dir.glob("*.safetensors"))


#: bytes per element of safetensors' dtypes
ITEMSIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
            "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def _check_safetensors_file(f: Path) -> dict[str, int]:
    """Header length ``n`` (u64 LE) + ``n`` bytes of JSON + data; every tensor's
    ``data_offsets = [begin, end]`` must satisfy ``end - begin = numel * itemsize`` and the largest
    ``end`` must equal ``file size - 8 - n``. Returns the number of elements of its tensors per dtype
    (safetensors' names: ``"BF16"``, ``"F32"``, ...)."""
    if not f.is_file():
        raise InputError(f"weights file {f} is missing; the model directory is incomplete")
    size = f.stat().st_size
    try:
        with open(f, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100_000_000:
                raise ValueError(f"header length {n} exceeds the file size {size}")
            header = json.loads(fh.read(n).decode("utf-8"))
        end_max, counts = 0, {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            begin, end = t["data_offsets"]
            numel = 1
            for d in t["shape"]:
                numel *= int(d)
            isz = ITEMSIZE.get(t["dtype"])
            if isz is not None and end - begin != numel * isz:
                raise ValueError(f"tensor {name} has {end - begin} bytes for shape {t['shape']}")
            end_max = max(end_max, end)
            counts[t["dtype"]] = counts.get(t["dtype"], 0) + numel
        if end_max != size - 8 - n:
            raise ValueError(f"tensor data ends at byte {end_max} but the file holds {size - 8 - n}")
        from safetensors import safe_open

        with safe_open(str(f), framework="pt") as sf:
            for k in sf.keys():  # noqa: SIM118 (safe_open is not a dict)
                sf.get_slice(k).get_shape()
        return counts
    except InputError:
        raise
    except Exception as e:  # OSError, ValueError, json errors, SafetensorError
        raise InputError(
            f"weights file {f} is truncated or corrupt ({first_line(e)}); "
            f"restore or re-export the model"
        ) from e


def weight_counts(model_dir: str | os.PathLike) -> dict[str, int]:
    """The elements a model folder's safetensors files hold, per dtype (``{}`` where it has none); InputError (never
    ``SafetensorError``) if one is unreadable. Reads only the headers and file sizes
    (:func:`_check_safetensors_file`), not the data."""
    counts: dict[str, int] = {}
    for f in safetensors_files(Path(model_dir).expanduser()):
        for dt, n in _check_safetensors_file(f).items():
            counts[dt] = counts.get(dt, 0) + n
    return counts


def check_weights_readable(model_dir: str | os.PathLike) -> int:
    """InputError (never ``SafetensorError``) if a safetensors file of ``model_dir`` is unreadable; else the number
    of elements its safetensors files hold (0 where it has none): :func:`weight_counts`, summed."""
    return sum(weight_counts(model_dir).values())


def check_load_fits(model_dir: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
    """InputError where a model folder's safetensors weights cannot fit in the host's memory once loaded:
    bytes = Σ over stored dtypes of count × itemsize, floating weights counted in ``dtype`` (as stored where None).
    Reads the headers only (:func:`weight_counts`), which also refuses a truncated file in one line."""
    counts = weight_counts(model_dir)
    need = sum(n * (dtype.itemsize if dtype is not None and k in FLOATS else ITEMSIZE.get(k, 4))
               for k, n in counts.items())
    numel = sum(counts.values())
    how = f" in {str(dtype).removeprefix('torch.')}" if dtype is not None else ""
    check_fits(need, f"loading {model_dir}{how} ({numel / 1e9:.2f} B weights)",
               "Use a machine with more memory, or a smaller model.")
