"""Where a run may write its output folder: :func:`check_out_dir` (never the source, never a folder of the user's,
never over the run's own inputs), :func:`foreign_files`, :func:`check_writable`; and the names a checkpoint's files
have (:data:`MANIFEST`, :data:`HF_WEIGHT_NAMES`), which :mod:`spense.io` writes."""

from __future__ import annotations

import os
from pathlib import Path

from spense.errors import CheckpointError, InputError
from spense.side_files import SIDE_FILES

MANIFEST = "spense.json"
#: what ``save_pretrained`` writes and ``from_pretrained`` reads: one file, or the index of its shards
HF_WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json")


def check_out_dir(source: Path, out: Path, overwrite: bool, flag: str = "--out",
                  inputs: dict[str, Path | None] | None = None) -> None:
    """Refuse an output dir that is (inside) the source, contains it, or exists (unless ``overwrite``
    and it is a Spense checkpoint holding nothing else: :func:`foreign_files`), holds one of the run's
    ``inputs`` (option -> path, such as ``--calib``), or cannot be written (:func:`check_writable`). Paths are
    compared resolved; ``flag`` is the option the messages name."""
    source, out = Path(source).expanduser().resolve(), Path(out).expanduser().resolve()
    for opt, path in (inputs or {}).items():
        if path is not None and Path(path).expanduser().resolve().is_relative_to(out):
            raise CheckpointError(f"{opt} {path} is inside the output {out}, which the run writes; move it or "
                                  f"choose another {flag}")
    if out == source or out.is_relative_to(source):
        raise CheckpointError(
            f"output {out} is the source model directory or inside it; choose another {flag}"
        )
    if source.is_relative_to(out):
        raise CheckpointError(f"output {out} contains the source model {source}; choose another {flag}")
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise CheckpointError(f"output {out} already exists; pass --overwrite to replace it")
        if not out.is_dir():
            raise CheckpointError(f"output {out} exists and is not a directory; remove it first")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise CheckpointError(
                f"output {out} exists and is not a Spense checkpoint (no {MANIFEST}); refusing to "
                f"replace it, remove it yourself if you mean it"
            )
        other = foreign_files(out)
        if other:
            raise CheckpointError(f"output {out} holds files a Spense checkpoint does not ({', '.join(other[:5])}"
                                  f"{', ...' if len(other) > 5 else ''}); refusing to replace it: move them out, "
                                  "or remove the folder yourself")
    check_writable(out, "output")


def foreign_files(folder: Path) -> list[str]:
    """Names in ``folder`` that no Spense checkpoint writes (sorted): anything but its manifest, ``config.json``,
    ``*.safetensors`` and their index, and the source's side files (:data:`spense.side_files.SIDE_FILES`), so that
    ``--overwrite`` never deletes a file of the user's."""
    own = {MANIFEST, "config.json", *HF_WEIGHT_NAMES, *SIDE_FILES}
    return sorted(p.name for p in Path(folder).iterdir() if p.name not in own and not p.name.endswith(".safetensors"))


def check_writable(path: str | os.PathLike, what: str, kind: str = "dir", inside: bool = False) -> None:
    """Refuse, before any work, an output ``path`` that cannot be written: an existing ``path`` of the wrong
    ``kind`` ("dir" or "file"), or a nearest existing folder above it (``inside``: from ``path`` itself, for a
    folder whose files are written into it as it is) that is not a directory or in which no folder can be
    made (read-only filesystem, no permission; tried with a temporary folder)."""
    import tempfile

    path = Path(path).expanduser().absolute()
    try:
        if path.exists() and (path.is_dir() != (kind == "dir")):
            raise InputError(f"cannot write {what} {path}: it exists and is "
                             + ("not a directory" if kind == "dir" else "a directory"))
        anc = path if inside else path.parent
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir():
            raise InputError(f"cannot write {what} {path}: {anc} is not a directory")
        os.rmdir(tempfile.mkdtemp(prefix=".spense-write-check-", dir=anc))
    except OSError as e:  # no permission to look, read-only filesystem, ...
        raise InputError(f"cannot write {what} {path}: {e.strerror or e}") from None
