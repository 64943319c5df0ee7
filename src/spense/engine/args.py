"""What the engine's decoder is, read from a transformers config: :class:`ModelArgs`, the RoPE frequencies.

Supported: ``llama``, ``mistral``, ``qwen2``, ``qwen3`` (per-head q/k RMSNorm) and ``gemma3_text`` (Gemma 3's text
model: ``(1 + w)`` norms around attention and MLP, embeddings times ``sqrt(dim)``, GELU, its own softmax scale,
sliding-window layers with their own RoPE base), with default, ``linear`` or ``llama3`` RoPE (:func:`rope_inv_freq`)
and the biases their configs ask for (``attention_bias``, ``mlp_bias``).  A layer of ``layer_types``
``"sliding_attention"`` (or every layer of a Mistral with ``sliding_window``) sees the keys ``j`` with
``i - window < j <= i`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from spense.errors import InputError, UnsupportedModel, first_line

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")
#: the configs' activation names -> the engine's (``silu``: x sigmoid(x); ``gelu_tanh``: GELU's tanh form)
ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh",
               "gelu": "gelu"}


@dataclass
class ModelArgs:
    arch: str
    vocab_size: int
    dim: int
    n_layer: int
    n_head: int
    n_kv_head: int
    head_dim: int
    intermediate_size: int
    eps: float
    rope_theta: float
    max_positions: int
    qk_norm: bool = False
    attn_bias: bool = False  # q, k, v
    o_bias: bool = False  # llama/mistral/qwen3/gemma3 attention_bias also biases o_proj (qwen2's does not)
    mlp_bias: bool = False
    tie_embeddings: bool = False
    rope_scaling: tuple = ()  # ("linear", factor) or ("llama3", factor, low, high, original positions)
    act: str = "silu"  # the MLP's: "silu", "gelu_tanh" or "gelu" (ACTIVATIONS)
    gemma: bool = False  # (1 + w) norms (the product in float32), four per block; embeddings times sqrt(dim)
    attn_scale: float = 0.0  # the softmax's scale; 0: 1 / sqrt(head_dim)
    final_softcap: float = 0.0  # logits c tanh(z / c) where c > 0
    sliding: tuple = ()  # per layer, True where it attends over a sliding window; (): none does
    window: int = 0  # the sliding window (keys i - window < j <= i)
    rope_theta_local: float = 0.0  # the sliding layers' RoPE base where it differs (Gemma 3); 0: rope_theta
    rope_scaling_local: tuple = ()

    @classmethod
    def from_hf_config(cls, cfg) -> "ModelArgs":
        """Read a transformers config; an unsupported architecture (or part of one) is refused with its name."""
        arch = getattr(cfg, "model_type", None)
        if arch not in SUPPORTED:
            raise UnsupportedModel(f"unsupported architecture {arch!r}: the engine (bench) runs {', '.join(SUPPORTED)}; "
                                   "prune, eval and pack take it, generate runs it through transformers, and its "
                                   "checkpoint loads in transformers (AutoModelForCausalLM.from_pretrained, or "
                                   "spense.runtime.load_packed when packed)", what=str(arch))
        gemma = arch == "gemma3_text"
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        rope = rope if isinstance(rope, dict) else {}
        local: dict = {}
        if gemma:
            rope, local = _gemma_rope(cfg, rope)
        scaling = rope_scaling_of(arch, rope)
        theta = rope.get("rope_theta") or getattr(cfg, "rope_theta", None) or 10000.0
        n_head = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
        bias = bool(getattr(cfg, "attention_bias", arch == "qwen2"))
        sliding, window = sliding_layers(arch, cfg)
        act = getattr(cfg, "hidden_activation", None) or getattr(cfg, "hidden_act", None) or "silu"
        if act not in ACTIVATIONS:
            raise UnsupportedModel(f"{arch}: activation {act!r} is not computed by the engine (it computes "
                                   f"{', '.join(ACTIVATIONS)}); generate runs it through transformers",
                                   what=f"{arch} with activation {act!r}")
        if getattr(cfg, "use_bidirectional_attention", False):
            raise UnsupportedModel(f"{arch}: bidirectional attention is not computed by the engine; generate runs it "
                                   "through transformers", what=f"{arch} with bidirectional attention")
        # (a Gemma 3 config's attn_logit_softcapping is read by no forward of transformers' Gemma 3: not here either)
        scalar = getattr(cfg, "query_pre_attn_scalar", None) if gemma else None
        return cls(arch=arch, vocab_size=cfg.vocab_size, dim=cfg.hidden_size, n_layer=cfg.num_hidden_layers,
                   n_head=n_head, n_kv_head=getattr(cfg, "num_key_value_heads", None) or n_head,
                   head_dim=head_dim, intermediate_size=cfg.intermediate_size, eps=cfg.rms_norm_eps,
                   rope_theta=float(theta), max_positions=int(getattr(cfg, "max_position_embeddings", 4096)),
                   qk_norm=arch in ("qwen3", "gemma3_text"), attn_bias=bias,
                   o_bias=bias and arch != "qwen2", mlp_bias=bool(getattr(cfg, "mlp_bias", False)),
                   tie_embeddings=bool(getattr(cfg, "tie_word_embeddings", gemma)), rope_scaling=scaling,
                   act=ACTIVATIONS[act], gemma=gemma, attn_scale=float(scalar) ** -0.5 if scalar else 0.0,
                   final_softcap=float(getattr(cfg, "final_logit_softcapping", None) or 0.0),
                   sliding=sliding, window=window,
                   rope_theta_local=float(local.get("rope_theta") or 0.0) if local else 0.0,
                   rope_scaling_local=rope_scaling_of(arch, local) if local else ())


def _gemma_rope(cfg, rope: dict) -> tuple[dict, dict]:
    """Gemma 3's RoPE parameters of its full-attention and of its sliding layers: ``rope_parameters`` keyed by layer
    type (transformers 5), else ``rope_theta`` (default 10^6), ``rope_scaling`` and ``rope_local_base_freq`` (10^4)."""
    if "full_attention" in rope or "sliding_attention" in rope:
        full, local = dict(rope.get("full_attention") or {}), dict(rope.get("sliding_attention") or {})
    else:
        full = dict(getattr(cfg, "rope_scaling", None) or {})
        local = {}
    full.setdefault("rope_theta", getattr(cfg, "rope_theta", None) or 1e6)
    local.setdefault("rope_theta", getattr(cfg, "rope_local_base_freq", None) or 1e4)
    return full, local


def sliding_layers(arch: str, cfg) -> tuple[tuple, int]:
    """``(sliding, window)``: per layer whether it attends over a sliding window (its ``layer_types`` entry is
    ``"sliding_attention"``; a Mistral's every layer where ``sliding_window`` is set), and the window; ``((), 0)``
    where no layer does."""
    window = getattr(cfg, "sliding_window", None)
    types = getattr(cfg, "layer_types", None)
    n = cfg.num_hidden_layers
    if arch == "mistral":  # transformers' Mistral slides every layer where the window is set, whatever its types
        sliding = (True,) * n if window else ()
    elif types:
        bad = sorted({t for t in types} - {"sliding_attention", "full_attention"})
        if bad:
            raise UnsupportedModel(f"{arch}: attention of layer type {bad[0]!r} is not computed by the engine; "
                                   "generate runs it through transformers", what=f"{arch} with {bad[0]!r} layers")
        if len(types) < n:
            raise InputError(f"{arch}: config.json's layer_types names {len(types)} layers of its {n}")
        sliding = tuple(t == "sliding_attention" for t in types[:n])
    elif arch == "gemma3_text":  # before layer_types: every sliding_window_pattern-th layer is full
        p = int(getattr(cfg, "sliding_window_pattern", None) or 6)
        sliding = tuple(bool((i + 1) % p) for i in range(n))
    elif arch in ("qwen2", "qwen3") and getattr(cfg, "use_sliding_window", False):  # before layer_types (< 4.53)
        first = int(getattr(cfg, "max_window_layers", None) or 0)
        sliding = tuple(i >= first for i in range(n))
    else:
        sliding = ()
    if not any(sliding):
        return (), 0
    if not window or int(window) < 1:
        raise InputError(f"{arch}: sliding-window layers without a sliding_window in config.json")
    return sliding, int(window)


def rope_scaling_of(arch: str, rope: dict) -> tuple:
    """:attr:`ModelArgs.rope_scaling` from a config's ``rope_parameters`` (or ``rope_scaling``); a kind the engine
    does not compute is refused by name."""
    kind = rope.get("rope_type", rope.get("type")) or "default"
    try:
        if kind == "default":
            return ()
        if kind == "linear":
            return ("linear", float(rope["factor"]))
        if kind == "llama3":
            return ("llama3", float(rope["factor"]), float(rope["low_freq_factor"]), float(rope["high_freq_factor"]),
                    float(rope["original_max_position_embeddings"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{arch}: RoPE scaling {kind!r} lacks a number for {first_line(e)}") from None
    raise UnsupportedModel(f"{arch}: RoPE scaling {kind!r} is not supported by the engine (it computes default, "
                           "linear and llama3); prune, eval and pack do not need it, generate runs it through "
                           "transformers", what=f"{arch} with RoPE scaling {kind!r}")


def rope_inv_freq(head_dim: int, theta: float, scaling: tuple = ()) -> torch.Tensor:
    """The rotary frequencies ``f_i = theta^(-2i / head_dim)``, i < head_dim / 2, scaled:

    - ``linear`` (factor s): ``f_i / s``;
    - ``llama3`` (s, low l, high h, original context C): with wavelength ``w_i = 2 pi / f_i``, ``f_i / s`` where
      ``w_i > C / l``, ``f_i`` where ``w_i < C / h``, and between them ``(1 - a) f_i / s + a f_i`` with
      ``a = (C / w_i - l) / (h - l)``."""
    f = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    if not scaling:
        return f
    if scaling[0] == "linear":
        return f / scaling[1]
    _, s, low, high, ctx = scaling
    w = 2 * math.pi / f
    a = (ctx / w - low) / (high - low)
    mid = (1 - a) * f / s + a * f
    return torch.where(w > ctx / low, f / s, torch.where(w < ctx / high, f, mid))


def rope_tables(a: ModelArgs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(inv_freq, inv_freq_local)``: the frequencies of the full-attention layers, and of the sliding layers where
    their RoPE differs (Gemma 3), else None."""
    full = rope_inv_freq(a.head_dim, a.rope_theta, a.rope_scaling)
    if not a.sliding or not a.rope_theta_local:
        return full, None
    return full, rope_inv_freq(a.head_dim, a.rope_theta_local, a.rope_scaling_local)
