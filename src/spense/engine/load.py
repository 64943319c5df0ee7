"""Loading a model into the engine's :class:`~spense.engine.model.Transformer`.

Sources (:func:`load`): a built-in shape with random weights (``qwen3-8b``, ``qwen3-32b``,
``qwen3-32b[:16]`` = first 16 layers, ``qwen3-tiny``); a local HF folder (or a ``.gguf`` / built-in
model name through :func:`spense.models.resolve_model`); a Spense checkpoint, unpacked (its pruned
linears are packed into :class:`~spense.runtime.SpenseLinear` here) or packed (never unpacked).
On CUDA every SpenseLinear is compacted: it holds the kernel layout only, no dense copy.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import spense.runtime.checkpoint  # noqa: F401  (registers the packed-checkpoint loader of spense.io)
from spense.engine.model import ModelArgs, Transformer
from spense.errors import CheckpointError, InputError, first_line

_QWEN3 = dict(arch="qwen3", vocab_size=151936, head_dim=128, eps=1e-6, rope_theta=1e6, max_positions=40960,
              qk_norm=True)
BUILTIN_SHAPES: dict[str, dict] = {
    "qwen3-8b": dict(_QWEN3, dim=4096, intermediate_size=12288, n_layer=36, n_head=32, n_kv_head=8),
    "qwen3-32b": dict(_QWEN3, dim=5120, intermediate_size=25600, n_layer=64, n_head=64, n_kv_head=8),
    "qwen3-tiny": dict(_QWEN3, vocab_size=1024, head_dim=32, dim=128, intermediate_size=256, n_layer=2,
                       n_head=4, n_kv_head=2, max_positions=1024),  # CPU tests
}
_SPEC_RE = re.compile(r"^(?P<name>[a-z0-9.\-]+?)(?:\[:(?P<layers>\d+)\])?$")


@dataclass
class Loaded:
    model: Transformer
    label: str
    source: str  # "random" | "hf" | "spense" | "spense-packed"
    model_dir: Path | None = None  # where the tokenizer lives
    manifest: dict | None = None


def parse_shape(spec: str) -> tuple[str, int | None] | None:
    """``"qwen3-32b[:16]"`` -> ``("qwen3-32b", 16)``; None when not a built-in shape."""
    m = _SPEC_RE.match(str(spec).strip().lower())
    if not m or m.group("name") not in BUILTIN_SHAPES:
        return None
    return m.group("name"), (int(m.group("layers")) if m.group("layers") else None)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def empty_model(args: ModelArgs, device: torch.device, dtype: torch.dtype) -> Transformer:
    """The engine model with uninitialised ``dtype`` weights on ``device`` (RoPE table float32)."""
    with torch.device("meta"), _default_dtype(dtype):
        m = Transformer(args)
    m = m.to_empty(device=device)
    m.init_rope(device)
    if args.tie_embeddings:
        m.lm_head.weight = m.model.embed_tokens.weight
    return m.eval()


@torch.no_grad()
def random_model(name: str, device: torch.device, dtype: torch.dtype, layers: int | None = None,
                 seed: int = 0, std: float = 0.02) -> Transformer:
    kw = dict(BUILTIN_SHAPES[name])
    if layers is not None:
        if not 1 <= layers <= kw["n_layer"]:
            raise InputError(f"{name} has {kw['n_layer']} layers; cannot take the first {layers}")
        kw["n_layer"] = layers
    m = empty_model(ModelArgs(**kw), device, dtype)
    g = torch.Generator(device=device).manual_seed(int(seed))
    for n, p in m.named_parameters():
        if p.ndim >= 2:
            p.normal_(0.0, std, generator=g)
        else:
            p.fill_(1.0) if n.endswith("weight") else p.zero_()
    return m


def _read_weights(d: Path, device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors of model folder ``d`` on ``device``: its safetensors files (as its index names them), else its
    ``pytorch_model*.bin`` files (read as plain tensors, never as pickled code)."""
    from safetensors.torch import load_file

    from spense.weights import safetensors_files

    out: dict[str, torch.Tensor] = {}
    files = safetensors_files(d)
    for f in files:
        out.update(load_file(str(f), device=str(device)))
    if not files:
        bins = sorted(d.glob("pytorch_model*.bin"))
        if not bins:
            raise InputError(f"{d} has no weights (*.safetensors or pytorch_model*.bin)")
        for f in bins:
            try:
                out.update(torch.load(f, map_location=device, weights_only=True))
            except Exception as e:  # not a zip of tensors: a truncated file, or one that pickles code
                raise InputError(f"cannot read {f}: {first_line(e)}") from None
    return out


def _hf_args(d: Path) -> ModelArgs:
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(str(d), local_files_only=True, trust_remote_code=False)
    except Exception as e:
        raise InputError(f"{d}: cannot read config.json ({first_line(e)})") from e
    return ModelArgs.from_hf_config(cfg)


def _load_state(m: Transformer, sd: dict[str, torch.Tensor], dtype: torch.dtype, skip: set[str]) -> None:
    own = m.state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("rotary_emb.inv_freq")}
    if m.args.tie_embeddings:
        sd.pop("lm_head.weight", None)
    unexpected = sorted(set(sd) - set(own) - skip)
    missing = sorted(k for k in set(own) - set(sd) if k.rpartition(".")[0] not in skip
                     and not (m.args.tie_embeddings and k == "lm_head.weight"))
    if unexpected or missing:
        raise CheckpointError(f"weights do not fit the {m.args.arch} engine model: "
                              f"unexpected {unexpected[:4]}, missing {missing[:4]}")
    with torch.no_grad():
        for k, v in sd.items():
            if k in own:
                own[k].copy_(v.to(own[k].dtype) if v.is_floating_point() else v)


def _mount(m: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    owner = m.get_submodule(parent) if parent else m
    if child in getattr(owner, "FUSED", ()):  # a fused q/k/v or gate/up GEMM would still read the old weight
        owner.unfuse()
    setattr(owner, child, module)


def compact_all(m: nn.Module) -> int:
    """Compact every SpenseLinear (CUDA: kernel layout only); returns how many."""
    from spense.runtime.linear import SpenseLinear

    n = 0
    for mod in m.modules():
        if isinstance(mod, SpenseLinear) and mod.values.device.type == "cuda":
            mod.compact()
            n += 1
    return n


def load(spec: str | Path, device: torch.device, dtype: torch.dtype = torch.bfloat16, backend: str = "auto",
         layers: int | None = None, seed: int = 0) -> Loaded:
    """Build the engine model named by ``spec`` on ``device`` (see the module doc)."""
    s = str(spec)
    shape = parse_shape(s) if not Path(s).expanduser().exists() else None
    if shape is not None:
        name, n = shape
        m = random_model(name, device, dtype, layers if layers is not None else n, seed)
        full = BUILTIN_SHAPES[name]["n_layer"]
        label = name if m.args.n_layer == full else f"{name}[:{m.args.n_layer}]"
        return Loaded(m, label, "random")
    p = Path(s).expanduser()
    if not (p / "spense.json").is_file():
        try:
            from spense.models import resolve_model
        except ImportError:  # pragma: no cover
            resolve_model = None
        p = Path(resolve_model(s)) if resolve_model is not None else p
        if not (p / "config.json").is_file():
            raise InputError(f"{s!r} is not a model folder (no config.json), nor a built-in shape "
                             f"({', '.join(BUILTIN_SHAPES)})")
        m = empty_model(_hf_args(p), device, dtype)
        _load_state(m, _read_weights(p, device), dtype, set())
        q = Path(s).expanduser()  # a built-in model's name, not its cache folder's
        return Loaded(m, q.resolve().name if q.exists() else q.name, "hf", p)
    args = _hf_args(p)  # refuses another architecture by name before reading any weight
    from spense.io import read_manifest, validate_checkpoint

    manifest = read_manifest(p)  # a broken spense.json: one line
    if not manifest.get("packed"):  # a packed one is checked tensor by tensor as read_packed reads it, below
        validate_checkpoint(p)
    from spense.format import SpenseLayout, pack
    from spense.runtime.linear import SpenseLinear

    m = empty_model(args, device, dtype)
    if manifest.get("packed"):
        from spense.io import read_packed

        _, packed, rest = read_packed(p)
        rest = {k: v.to(device) for k, v in rest.items()}
        _load_state(m, rest, dtype, set(packed))
        for name, pk in packed.items():
            pk = pk.to(device=device) if hasattr(pk, "to") else pk
            if pk.scale is None and pk.values.dtype != dtype:
                pk = pk.to(dtype=dtype)
            bias = rest.get(name + ".bias")
            _mount(m, name, SpenseLinear(pk, bias, backend=backend, name=name))
        src = "spense-packed"
    else:
        sd = _read_weights(p, device)
        _load_state(m, sd, dtype, set())
        for name, rec in manifest["layers"].items():
            lay = SpenseLayout.from_dict(rec["layout"])
            w = sd[name + ".weight"].to(dtype)
            if rec.get("transposed", False):
                w = w.t()
            _mount(m, name, SpenseLinear(pack(w.contiguous(), lay), sd.get(name + ".bias"), backend=backend,
                                         name=name))
        src = "spense"
    m.fuse_projections()  # q/k/v, gate/up over the same dense columns -> one kernel (before compacting)
    compact_all(m)
    return Loaded(m.eval(), p.name, src, p, manifest)
