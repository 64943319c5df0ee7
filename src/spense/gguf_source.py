"""A ``.gguf`` file read and dequantized by transformers into a bf16 Hugging Face directory.

:func:`gguf_header` checks the file (every tensor inside it) and reads its architecture and weight count;
:func:`convert_gguf` dequantizes it (``gguf_file=``), refusing first what cannot fit in the host's memory, and
saves it in bf16.  The cache that keeps one conversion per GGUF is :mod:`spense.models`'.
"""

from __future__ import annotations

import contextlib
import functools
import json
import warnings
from pathlib import Path

from spense.errors import InputError, first_line
from spense.log import bars_wanted

CACHE_DTYPE = "bfloat16"


def gguf_header(path: Path) -> tuple[str, int]:
    """The GGUF's ``general.architecture`` and its number of weights, after checking that every tensor lies inside
    the file.

    InputError for a truncated or corrupt file.  Whether transformers reads the architecture is left
    to transformers itself (its lists differ between versions); :func:`convert_gguf` turns its refusal
    into an InputError naming the architecture.
    """
    try:
        from gguf import GGUFReader
    except ImportError as e:
        raise InputError("reading a .gguf needs the gguf package: pip install gguf accelerate") from e
    try:
        reader = GGUFReader(str(path))
        arch = str(reader.fields["general.architecture"].contents())
        size = path.stat().st_size
        numel = 0
        for t in reader.tensors:
            if t.data_offset + t.n_bytes > size:
                raise ValueError(f"tensor {t.name} extends past the end of the file")
            numel += int(t.n_elements)
    except Exception as e:  # the reader raises ValueError/KeyError/struct.error/IndexError on bad bytes
        raise InputError(
            f"GGUF {path} is truncated or corrupt ({first_line(e)})"
        ) from e
    return arch, numel


#: transformers versions whose GGUF tokenizer of an architecture is known to be wrong: the Gemma
#: tokenizer built by transformers 5.17 from gemma-3-270m's GGUF splits words into many more pieces
#: than the model was trained on and adds no <bos> (41 tokens instead of 21 for a WikiText line; the
#: dense model then scores perplexity 26,664 instead of 55 on WikiText-2 test); 5.24 builds it right.
GGUF_TOKENIZER_MIN = {"gemma": "5.24"}


def check_gguf_tokenizer_support(arch: str, version: str | None = None) -> None:
    """One-line InputError when this transformers builds a wrong tokenizer for ``arch``'s GGUF."""
    import transformers
    from packaging.version import Version

    version = version or transformers.__version__
    for prefix, least in GGUF_TOKENIZER_MIN.items():
        if arch.startswith(prefix) and Version(version) < Version(least):
            raise InputError(f"transformers {version} builds a wrong tokenizer from a {arch} GGUF; "
                             f"pip install 'transformers>={least}' (or pass a converted HF directory)")


def convert_gguf(gguf_path: Path, out: Path, tokenizer: bool = True) -> None:
    """Dequantize ``gguf_path`` with transformers and save it in bf16 under ``out`` (with its
    tokenizer unless ``tokenizer=False``: the weights alone, for a tokenizer made elsewhere).

    Refused first: a file :func:`gguf_header` finds damaged, a tokenizer this transformers builds wrong for the
    architecture, and weights whose float32 dequantization (4 bytes a weight, transformers' reader) does not fit in
    the host's memory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spense.hostmem import check_fits

    arch, numel = gguf_header(gguf_path)
    if tokenizer:
        check_gguf_tokenizer_support(arch)
    check_fits(4 * numel, f"dequantizing {gguf_path} ({numel / 1e9:.2f} B weights) in float32",
               "Use a machine with more memory, or a smaller model.")

    src, name = str(gguf_path.parent), gguf_path.name
    try:
        with warnings.catch_warnings(), _gguf_bar(bars_wanted()):
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(src, gguf_file=name, local_files_only=True) if tokenizer else None
            model = AutoModelForCausalLM.from_pretrained(
                src, gguf_file=name, dtype=torch.bfloat16, local_files_only=True, **_dequantize_kwargs()
            )
    except Exception as e:  # transformers raises ValueError/KeyError/RuntimeError/... here
        import transformers

        first = first_line(e)
        raise InputError(
            f"transformers {transformers.__version__} cannot read GGUF {gguf_path} "
            f"(architecture {arch!r}): {first}"
        ) from e
    for pname, p in model.named_parameters():
        if not bool(torch.isfinite(p.data).all()):
            raise InputError(f"GGUF {gguf_path} is corrupt: tensor {pname} dequantizes to NaN/Inf")
    _drop_gguf_quantizer(model)
    model.config.dtype = torch.bfloat16
    model.save_pretrained(out, safe_serialization=True)
    if tok is not None:
        tok.save_pretrained(out)
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["dtype"] = CACHE_DTYPE  # pruned checkpoints keep the source's dtype (hf.source_dtype)
    cfg.pop("torch_dtype", None)
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _gguf_bar(shown: bool):
    """transformers' GGUF reader draws a tqdm bar of its own ("Converting and de-quantizing GGUF tensors"): off
    unless ``shown`` (a terminal, no -q / --json), as spense's own bars are."""
    try:
        import transformers.modeling_gguf_pytorch_utils as reader
    except ImportError:  # pragma: no cover  (no gguf package: from_pretrained says so)
        reader = None
    bar = getattr(reader, "tqdm", None)
    if shown or bar is None:
        yield
        return
    reader.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        reader.tqdm = bar


def _dequantize_kwargs() -> dict:
    """``quantization_config=GgufConfig(dequantize=True)`` where transformers can keep GGUF blocks
    packed (>= 5.2x); older versions always dequantize and take no such argument."""
    try:
        import inspect

        from transformers import GgufConfig
    except ImportError:
        return {}
    if "dequantize" not in inspect.signature(GgufConfig.__init__).parameters:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _drop_gguf_quantizer(model) -> None:
    """Make a dequantized GGUF model a plain one so that ``save_pretrained`` writes it.

    InputError if a weight is still packed (a module other than a dense ``nn.Linear`` holding it).
    """
    import torch

    for mname, mod in model.named_modules():
        if "gguf" in type(mod).__name__.lower():
            raise InputError(f"transformers kept {mname} packed as {type(mod).__name__}; cannot dequantize")
    for pname, p in model.named_parameters():
        if not p.is_floating_point() or p.dtype != torch.bfloat16:
            raise InputError(f"GGUF tensor {pname} came out as {p.dtype}, not dequantized to bfloat16")
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:
            pass
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
