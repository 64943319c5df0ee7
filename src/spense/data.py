"""Text data: reading, tokenisation, calibration windows, evaluation windows, default paths.

Everything is local: spense never downloads models or data sets.  The defaults are

* model: ``$SPENSE_DEFAULT_MODEL`` or ``<repo root>/models/default``;
* data:  ``$SPENSE_DATA_DIR`` or ``<repo root>/../shared/data/wikitext-2`` holding WikiText-2 raw
  text, ``valid.txt`` (calibration) and ``test.txt`` (evaluation).

Windows follow the SparseGPT / Wanda protocol: calibration windows are ``seqlen`` tokens starting
at a uniformly random offset in ``[0, T - seqlen - 1]`` (seeded, never the global RNG), evaluation
windows are consecutive non-overlapping ``seqlen`` slices of the whole tokenised text, the tail that
does not fill a window is dropped.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path

import torch

from spense.errors import InputError, first_line
from spense.methods import check_seed
from spense.side_files import json_problem

REPO_ROOT = Path(__file__).resolve().parents[2]
CALIB_FILE = "valid.txt"
EVAL_FILE = "test.txt"


# -- default paths ----------------------------------------------------------------------------
#: the model ``spense demo`` runs on when none is given (a built-in name, see :mod:`spense.models`)
DEFAULT_MODEL = "smollm2-135m"


def default_model() -> str:
    """``$SPENSE_DEFAULT_MODEL`` if set, else :data:`DEFAULT_MODEL` (resolved by ``resolve_model``)."""
    return os.environ.get("SPENSE_DEFAULT_MODEL") or DEFAULT_MODEL


def default_model_dir() -> Path:
    """``<repo root>/models/default``, the 18M Llama the tests and scripts use (may not exist)."""
    return REPO_ROOT / "models" / "default"


def default_data_dir() -> Path:
    """``$SPENSE_DATA_DIR`` if set, else ``<repo root>/../shared/data/wikitext-2`` (may not exist)."""
    env = os.environ.get("SPENSE_DATA_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data" / "wikitext-2"


def _existing_default(path: Path, what: str, option: str) -> Path:
    if not path.exists():
        raise InputError(
            f"default {what} not found at {path}; pass a local path explicitly with {option} "
            f"(spense never downloads anything)"
        )
    return path


def default_model_path() -> Path:
    """The default model directory, checked to exist (InputError otherwise)."""
    return _existing_default(default_model_dir(), "model", "--model")


def default_calib_path() -> Path:
    """WikiText-2 ``valid.txt`` in the default data dir (the calibration split)."""
    return _existing_default(
        default_data_dir() / CALIB_FILE, "calibration text", "--calib (or set SPENSE_DATA_DIR)"
    )


def default_eval_path() -> Path:
    """WikiText-2 ``test.txt`` in the default data dir (the evaluation split)."""
    return _existing_default(
        default_data_dir() / EVAL_FILE, "evaluation text", "--text (or set SPENSE_DATA_DIR)"
    )


# -- text -------------------------------------------------------------------------------------
def read_text(path: str | os.PathLike) -> str:
    """Read a text file, or every ``*.txt`` below a folder (sorted, joined with a blank line).

    Raises :class:`InputError` for a missing path, a folder without ``.txt`` files, undecodable
    bytes, or text that is empty or whitespace only.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"text path {p} does not exist; pass a local .txt file or a folder of them")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.txt") if f.is_file())
        if not files:
            raise InputError(f"folder {p} contains no *.txt files; pass a .txt file or a folder of them")
        text = "\n\n".join(read_text_file(f) for f in files)
    else:
        text = read_text_file(p)
    if not text.strip():
        raise InputError(f"text at {p} is empty (or whitespace only); pass a file with real text")
    return text


#: the most bytes one text file may hold (a corpus ten times WikiText-103's training split passes)
MAX_TEXT_BYTES = 1 << 30
#: calibration tokens at most (the Hessians' inputs; 2**31 int64 ids alone are 16 GiB)
MAX_CALIB_TOKENS = 1 << 31


def read_text_file(f: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """One file's UTF-8 text; :class:`InputError` naming the file if it cannot be read or decoded, is a device
    (``/dev/zero`` would be read forever) or holds more than ``limit`` bytes (a pipe is read up to it)."""
    try:
        st = f.stat()
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise InputError(f"{f} is a device, not a text file")
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise InputError(f"{f} holds {st.st_size / 2**30:.1f} GiB, more than the {limit / 2**30:.0f} GiB a "
                             "text may have; pass a part of it")
        with open(f, "rb") as fh:
            raw = fh.read(limit + 1)
        if len(raw) > limit:
            raise InputError(f"{f} gave more than the {limit / 2**30:.0f} GiB a text may have; pass a part of it")
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it
    except UnicodeDecodeError as e:
        raise InputError(f"{f} is not UTF-8 text ({e}); convert it to UTF-8 first") from e
    except OSError as e:
        raise InputError(f"cannot read {f}: {e}") from e


def text_fingerprint(text: str) -> str:
    """SHA-256 (hex) of the UTF-8 bytes of ``text``; used in run fingerprints and manifests."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- tokenisation -----------------------------------------------------------------------------
#: files of which a model directory needs at least one to have a tokenizer
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def load_tokenizer(model_dir: str | os.PathLike):
    """``AutoTokenizer`` from a local model directory (never downloads); InputError on failure."""
    from transformers import AutoTokenizer

    p = Path(model_dir).expanduser()
    if not p.is_dir():
        raise InputError(
            f"tokenizer directory {p} does not exist; pass a local Hugging Face model directory "
            f"(spense never downloads anything)"
        )
    needs = "tokenizer.json, tokenizer.model or vocab.json + merges.txt next to config.json"
    if not any((p / f).is_file() for f in TOKENIZER_FILES):
        raise InputError(f"no tokenizer in {p}: it needs {needs}")
    for name in ("config.json", "tokenizer_config.json"):  # transformers would blame the tokenizer for either
        problem = json_problem(p / name)
        if problem:
            raise InputError(problem)
    try:
        return AutoTokenizer.from_pretrained(str(p), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # transformers raises OSError/ValueError/... depending on what is missing
        raise InputError(f"cannot load a tokenizer from {p}: {first_line(e)} (it needs {needs})") from e


def tokenize(tokenizer, text: str) -> torch.Tensor:
    """Tokenise the whole ``text`` at once, without special tokens; a 1-D ``LongTensor`` of ids.

    The "sequence longer than max length" warning is suppressed: long texts are cut into windows
    afterwards, never fed to the model whole.  A model that expects a BOS token at the start of
    every sequence gets it per window (:func:`bos_id`, the ``bos`` argument of the window makers).
    """
    enc = tokenizer(text, verbose=False, add_special_tokens=False)
    ids = enc["input_ids"]
    t = torch.as_tensor(ids, dtype=torch.long).flatten()
    if t.numel() == 0:
        raise InputError("the text tokenised to zero tokens; pass a file with real text")
    return t


def check_token_ids(ids, vocab_size: int) -> None:
    """InputError where a token id (a tensor, or lists of ids) is not below ``vocab_size``, the rows of the model's
    embedding: a tokenizer of another model, which the embedding would meet with an index error."""
    flat = [i for row in ids for i in row] if isinstance(ids, list) else torch.as_tensor(ids).flatten().tolist()
    top = max(flat, default=-1)
    if top >= vocab_size or min(flat, default=0) < 0:
        bad = top if top >= vocab_size else min(flat)
        raise InputError(f"the tokenizer gives token id {bad}, but the model embeds only ids 0..{vocab_size - 1} "
                         "(config.json vocab_size): the tokenizer and the model do not match")


def check_model_token_ids(model, ids) -> None:
    """:func:`check_token_ids` against the rows of ``model``'s input embedding (where it has one)."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if emb is not None and hasattr(emb, "num_embeddings"):
        check_token_ids(ids, emb.num_embeddings)


def bos_id(tokenizer) -> int | None:
    """The BOS id when the tokenizer prepends one to every encoded text (Gemma, Llama 2), else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a", verbose=False)["input_ids"]
    return int(bos) if len(ids) and int(ids[0]) == int(bos) else None


def _with_bos(windows: torch.Tensor, bos: int | None) -> torch.Tensor:
    if bos is None:
        return windows
    return torch.cat([torch.full((windows.shape[0], 1), int(bos), dtype=windows.dtype), windows], 1)


# -- windows ----------------------------------------------------------------------------------
def _check_1d(ids: torch.Tensor) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise InputError(f"expected a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
    return ids.long()


def _check_positive(**kw: int) -> None:
    for k, v in kw.items():
        if int(v) <= 0:
            raise InputError(f"{k} must be a positive integer, got {v}")


def calibration_windows(ids: torch.Tensor, nsamples: int, seqlen: int, seed: int,
                        bos: int | None = None) -> torch.Tensor:
    """``(nsamples, seqlen)`` random windows of ``ids`` (SparseGPT/Wanda protocol).

    Each start is drawn uniformly from ``[0, T - seqlen - 1]`` by a ``torch.Generator`` seeded with
    ``seed``, so the result depends only on ``(ids, nsamples, seqlen, seed, bos)``.  With ``bos``,
    each window is ``[bos] + seqlen - 1`` text tokens.
    """
    ids = _check_1d(ids)
    _check_positive(nsamples=nsamples, seqlen=seqlen)
    check_seed(seed)
    n = _text_len(seqlen, bos)
    T = ids.numel()
    if T < n + 1:
        raise InputError(
            f"calibration text has {T} tokens but {n + 1} are needed for windows of "
            f"{_window_words(seqlen, bos)}; pass more text or a smaller --seqlen"
        )
    if nsamples * seqlen > MAX_CALIB_TOKENS:
        raise InputError(f"--nsamples {nsamples} x --seqlen {seqlen} is {nsamples * seqlen:.3g} calibration tokens, "
                         f"more than {MAX_CALIB_TOKENS:.3g}; pass a smaller --nsamples")
    if nsamples * n > 4 * T:  # random windows overlap a little in the usual runs (128 x 2048 of WikiText-2)
        warnings.warn(f"{nsamples} calibration windows of {n} text tokens read {nsamples * n / T:.0f}x the text's {T} "
                      "tokens: most of them repeat; a smaller --nsamples gives the same Hessians sooner")
    g = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(0, T - n, (int(nsamples),), generator=g)
    offsets = starts[:, None] + torch.arange(n)[None, :]
    return _with_bos(ids[offsets].contiguous(), bos)


def _text_len(seqlen: int, bos: int | None) -> int:
    """Text tokens in a window of ``seqlen`` (one fewer after a BOS token); InputError if none is left."""
    n = seqlen - (bos is not None)
    if n < 1:
        raise InputError(f"a window of {seqlen} token(s) leaves no text after the BOS token; pass --seqlen >= 2")
    return n


def _window_words(seqlen: int, bos: int | None) -> str:
    return f"{seqlen} tokens" + ("" if bos is None else f" (the BOS token and {seqlen - 1} of text)")


def eval_windows(ids: torch.Tensor, seqlen: int, max_windows: int | None = None,
                 bos: int | None = None) -> torch.Tensor:
    """``(nw, seqlen)`` consecutive non-overlapping windows; the incomplete tail is dropped.

    With ``bos``, each window is ``[bos] + seqlen - 1`` consecutive text tokens.
    """
    ids = _check_1d(ids)
    _check_positive(seqlen=seqlen)
    if max_windows is not None:
        _check_positive(max_windows=max_windows)
    n = _text_len(seqlen, bos)
    T = ids.numel()
    nw = T // n
    if max_windows is not None:
        nw = min(nw, int(max_windows))
    if nw == 0:
        raise InputError(
            f"evaluation text has {T} tokens, fewer than one window of {_window_words(seqlen, bos)}; pass more "
            f"text or a smaller --seqlen"
        )
    return _with_bos(ids[: nw * n].reshape(nw, n).contiguous(), bos)
