"""Hugging Face model structure and the small parsing helpers around it.

The one module that knows where a causal LM keeps its decoder blocks and linears, how GPT-2's
``Conv1D`` stores its weight, how a model folder is loaded (local files only), and how device and
dtype names are parsed.  Everything that needs device/dtype parsing or HF structure imports it from
here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from spense.errors import DeviceError, InputError, NumericalError, first_line


# --------------------------------------------------------------------------------------------------
# model structure
# --------------------------------------------------------------------------------------------------
_BLOCK_PATHS = (
    "model.layers",  # Llama, Qwen2/3, Mistral, Gemma, Phi-3 ...
    "model.decoder.layers",  # OPT
    "gpt_neox.layers",  # GPT-NeoX / Pythia
    "transformer.h",  # GPT-2, GPT-J, Bloom-like
)


def _get_attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``(prefix, blocks)``: the decoder block list of a causal LM and its attribute path.

    Supports Llama/Qwen2/Qwen3/Mistral (``model.layers``), OPT (``model.decoder.layers``),
    GPT-NeoX (``gpt_neox.layers``) and GPT-2 (``transformer.h``).
    """
    for path in _BLOCK_PATHS:
        blocks = _get_attr_path(model, path)
        if isinstance(blocks, nn.ModuleList) and len(blocks) > 0:
            return path, blocks
    arch = type(model).__name__
    mt = getattr(getattr(model, "config", None), "model_type", "?")
    raise InputError(
        f"unsupported architecture {arch} (model_type {mt!r}): no decoder block list found at "
        f"{', '.join(_BLOCK_PATHS)}"
    )


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D

        return Conv1D
    except Exception:  # pragma: no cover - very old/new transformers
        return None


def is_conv1d(module: nn.Module) -> bool:
    c = _conv1d_type()
    return c is not None and isinstance(module, c)


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """``(out_features, in_features)`` of an ``nn.Linear`` or a transformers ``Conv1D``."""
    w = module.weight
    if is_conv1d(module):
        return int(w.shape[1]), int(w.shape[0])
    return int(w.shape[0]), int(w.shape[1])


def find_linears(
    block: nn.Module, block_size: int = 64, m: int = 4, strict: bool = False, prefix: str = "", warn: bool = True
) -> dict[str, nn.Module]:
    """Prunable linears of one block, by name relative to the block (module order).

    ``nn.Linear`` and transformers' ``Conv1D`` (GPT-2; its weight is ``(in, out)``) qualify. A linear
    whose ``in_features`` is not a multiple of ``m`` or is smaller than ``block_size`` is skipped with
    a warning (``warn``: the pruning pass says it once, its allocator's passes do not), or raises
    :class:`InputError` when ``strict``.
    """
    kinds = _linear_kinds()
    out: dict[str, nn.Module] = {}
    for name, mod in block.named_modules():
        if not name or not isinstance(mod, kinds):
            continue
        full = f"{prefix}.{name}" if prefix else name
        why = _skip_reason(linear_shape(mod)[1], block_size, m)
        if why:
            if strict:
                raise InputError(f"{full}: cannot be pruned ({why}); drop --strict to skip it")
            if warn:
                warnings.warn(f"skipping {full}: {why}", UserWarning, stacklevel=2)
            continue
        out[name] = mod
    return out


def get_weight(module: nn.Module) -> torch.Tensor:
    """The ``(N, K)`` float32 weight (Conv1D transposed here, and only here)."""
    w = module.weight.data
    if is_conv1d(module):
        w = w.t()
    return w.float().contiguous()


def set_weight(module: nn.Module, w: torch.Tensor) -> None:
    """Write an ``(N, K)`` weight back, in the module's dtype and layout."""
    p = module.weight
    if is_conv1d(module):
        w = w.t()
    p.data.copy_(w.to(device=p.device, dtype=p.dtype))


# --------------------------------------------------------------------------------------------------
# devices and configs
# --------------------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` = cuda if available else cpu; a device other than cpu/cuda is an :class:`InputError`, a CUDA request
    without CUDA (or past the last GPU) a :class:`DeviceError`."""
    d = str(device).strip().lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(d)
    except RuntimeError as e:
        raise InputError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from e
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r} is not supported (use auto, cpu, cuda or cuda:N)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def config_dtype(config: Any) -> torch.dtype:
    """The dtype the source checkpoint was stored in (``float32`` if the config does not say)."""
    d = None
    for key in ("dtype", "torch_dtype"):
        d = config.__dict__.get(key)
        if d is not None:
            break
    if isinstance(d, str):
        d = getattr(torch, d.replace("torch.", ""), None)
    return d if isinstance(d, torch.dtype) else torch.float32


_STORED = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def stored_dtype(model_dir: str | Path) -> torch.dtype | None:
    """The floating dtype that holds most of the elements in a model folder's safetensors files (headers only,
    :func:`spense.weights.weight_counts`), or None where it has none."""
    from spense.weights import weight_counts

    count = {_STORED[k]: n for k, n in weight_counts(model_dir).items() if k in _STORED}
    return max(count, key=count.get) if count else None


def source_dtype(model_dir: str | Path) -> torch.dtype:
    """The dtype a model folder's weights are stored in (:func:`stored_dtype`); for weights that are not
    safetensors, the dtype recorded in its ``config.json`` (``float32`` when absent).

    Read from the files, not from a loaded model, which holds the dtype it was loaded in. A config.json that names
    no dtype, or another than its weights', does not decide: a pruned checkpoint is then neither twice the size of
    its source nor less precise.
    """
    stored = stored_dtype(model_dir)
    if stored is not None:
        return stored
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {Path(model_dir) / 'config.json'}: {e}") from e

    class _C:  # config_dtype reads __dict__
        pass

    c = _C()
    c.__dict__.update({k: cfg.get(k) for k in ("dtype", "torch_dtype")})
    return config_dtype(c)


def max_positions(config: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(config, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def clip_seqlen(config: Any, seqlen: int) -> int:
    """``seqlen`` clipped to the model's maximum positions (with a warning)."""
    if seqlen <= 0:
        raise InputError(f"seqlen must be positive, got {seqlen}")
    mp = max_positions(config)
    if mp is not None and seqlen > mp:
        warnings.warn(
            f"seqlen {seqlen} exceeds the model's {mp} positions; using {mp}", UserWarning, stacklevel=2
        )
        return mp
    return seqlen


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A compute dtype by name or as a torch dtype: float32, float16 or bfloat16 (``None`` passes through)."""
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype is None:
        return None
    dt = dtype if isinstance(dtype, torch.dtype) else names.get(str(dtype).lower())
    if dt not in names.values():
        raise InputError(f"unknown dtype {dtype!r} (use float32, float16 or bfloat16)")
    return dt


def load_model(model_dir: str | Path, dtype: torch.dtype | None = None) -> nn.Module:
    """Load a causal LM from a local folder (never the network), on CPU, in ``dtype`` (float32)."""
    import transformers
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    from spense.weights import check_load_fits

    check_load_fits(model_dir, dtype)  # and a truncated safetensors file: one line, not a traceback
    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, info = AutoModelForCausalLM.from_pretrained(
                str(model_dir), local_files_only=True, low_cpu_mem_usage=True, output_loading_info=True,
                trust_remote_code=False, **{key: dtype}
            )
    except (OSError, ValueError, KeyError, RuntimeError) as e:  # RuntimeError: weights of the wrong size
        raise InputError(f"cannot load model from {model_dir}: {first_line(e)}") from e
    missing = sorted(info.get("missing_keys") or ())
    if missing:  # transformers would leave them randomly initialised
        raise InputError(f"cannot load model from {model_dir}: its weights lack {len(missing)} tensors that its "
                         f"config.json asks for (first: {missing[0]}); config and weights do not match")
    unexpected = sorted(info.get("unexpected_keys") or ())
    if unexpected:
        warnings.warn(f"{model_dir}: {len(unexpected)} stored tensors are not used by its config.json "
                      f"(first: {unexpected[0]}); config and weights may not match", UserWarning, stacklevel=2)
    model.eval()
    model.config.use_cache = False
    return model


def _linear_kinds() -> tuple[type, ...]:
    """The module types :func:`find_linears` takes: ``nn.Linear`` and transformers' ``Conv1D``."""
    conv = _conv1d_type()
    return (nn.Linear,) + ((conv,) if conv is not None else ())


def _skip_reason(k: int, block_size: int, m: int) -> str | None:
    """Why :func:`find_linears` skips a linear of ``k`` input features, or None."""
    if k % m:
        return f"in_features {k} is not a multiple of {m}"
    if k < block_size:
        return f"in_features {k} is smaller than the dense block size {block_size}"
    return None


def check_some_prunable(blocks: Sequence[nn.Module], block_size: int, m: int) -> None:
    """One-line :class:`InputError`, before :func:`find_linears` warns about each, where it would skip every linear
    of ``blocks``: nothing would be pruned, and the run would report a dense model as pruned."""
    kinds = _linear_kinds()
    if not any(isinstance(mod, kinds) and _skip_reason(linear_shape(mod)[1], block_size, m) is None
               for b in blocks for name, mod in b.named_modules() if name):
        raise InputError(f"no linear layer of this model can be pruned: each has in_features below the dense "
                         f"block size {block_size} or not a multiple of m={m}; lower --block")


def check_finite_weights(model: nn.Module) -> None:
    """:class:`NumericalError` naming the first parameter that holds NaN/Inf."""
    for name, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p.data).all()):
            bad = int((~torch.isfinite(p.data)).sum())
            raise NumericalError(f"weight {name} contains {bad} NaN/Inf values")
