"""The decoder the engine runs: a Llama-family transformer written for decoding (gpt-fast style).

One module tree with the Hugging Face names (``model.layers.3.mlp.down_proj``), so that HF weights
and Spense manifests map onto it by name; every linear is whatever module it was given
(``nn.Linear``, :class:`~spense.runtime.SpenseLinear`, an FP8 linear).  Supported: ``llama``,
``mistral``, ``qwen2``, ``qwen3`` (per-head q/k RMSNorm), with default, ``linear`` or ``llama3`` RoPE
(:func:`rope_inv_freq`) and the biases their configs ask for (``attention_bias``, ``mlp_bias``).

Static KV cache ``(B, H_kv, S, D)`` per layer; ``forward(idx, input_pos, kv_len, start)``:

* ``input_pos`` ``(T,)`` cache slots of the ``T`` new tokens (the same for every row);
* ``kv_len`` (a Python int, a multiple of :data:`KV_BLOCK`): attention reads only the first
  ``kv_len`` slots - the filled part rounded up, so a compiled / graphed step is specialised per
  length bucket instead of reading the whole cache;
* ``start`` ``(B,)`` the first real slot of each row (left padding of a batch of prompts): keys
  before it are masked and RoPE positions count from it.

Attention: ``softmax(q k^T / sqrt(D) + mask) v`` with ``mask = 0`` where ``start_b <= j <= pos_i``,
``-inf`` elsewhere; grouped-query heads are folded into the query length (no K/V copies); through
SDPA, two batched GEMMs or a split-KV decode kernel (:meth:`Transformer.set_attention`).
RMSNorm: ``w * (x / sqrt(mean(x^2) + eps))`` in float32, rounded to the activation dtype before the
weight (transformers' rounding points).  RoPE: ``x cos + rotate_half(x) sin`` (halves, not pairs).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spense.errors import InputError, UnsupportedModel, first_line
from spense.runtime.attention import decode_attention, decode_attention_fused, fused_on, operand_on, rotate_half
from spense.runtime.attn_operand import linear_on_operand, operand_form
from spense.runtime.dense import dense_linear
from spense.runtime.fuse import fuse_group, unfuse_rows
from spense.runtime.xops import _env_int

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")
KV_BLOCK = 128  # attention length granularity (and the cache length's)


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
    o_bias: bool = False  # llama/mistral/qwen3 attention_bias also biases o_proj (qwen2's does not)
    mlp_bias: bool = False
    tie_embeddings: bool = False
    rope_scaling: tuple = ()  # ("linear", factor) or ("llama3", factor, low, high, original positions)

    @classmethod
    def from_hf_config(cls, cfg) -> "ModelArgs":
        """Read a transformers config; an unsupported architecture is refused with its name."""
        arch = getattr(cfg, "model_type", None)
        if arch not in SUPPORTED:
            raise UnsupportedModel(f"unsupported architecture {arch!r}: the engine (bench) runs {', '.join(SUPPORTED)}; "
                                   "prune, eval and pack take it, generate runs it through transformers, and its "
                                   "checkpoint loads in transformers (AutoModelForCausalLM.from_pretrained, or "
                                   "spense.runtime.load_packed when packed)", what=str(arch))
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        scaling = rope_scaling_of(arch, rope if isinstance(rope, dict) else {})
        theta = (rope.get("rope_theta") if isinstance(rope, dict) else None) or getattr(cfg, "rope_theta", 10000.0)
        n_head = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
        bias = bool(getattr(cfg, "attention_bias", arch == "qwen2"))
        return cls(arch=arch, vocab_size=cfg.vocab_size, dim=cfg.hidden_size, n_layer=cfg.num_hidden_layers,
                   n_head=n_head, n_kv_head=getattr(cfg, "num_key_value_heads", None) or n_head,
                   head_dim=head_dim, intermediate_size=cfg.intermediate_size, eps=cfg.rms_norm_eps,
                   rope_theta=float(theta), max_positions=int(getattr(cfg, "max_position_embeddings", 4096)),
                   qk_norm=arch == "qwen3", attn_bias=bias,
                   o_bias=bias and arch != "qwen2", mlp_bias=bool(getattr(cfg, "mlp_bias", False)),
                   tie_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)), rope_scaling=scaling)


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


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class KVCache(nn.Module):
    def __init__(self, batch: int, n_kv_head: int, length: int, head_dim: int, dtype, device):
        super().__init__()
        shape = (batch, n_kv_head, length, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Write ``k, v`` ``(B, H_kv, T, D)`` at slots ``input_pos`` of the first ``B`` rows (a batch
        smaller than the cache's uses its leading rows); returns those rows of the caches."""
        B = k.shape[0]
        kc, vc = self.k[:B], self.v[:B]
        kc.index_copy_(2, input_pos, k)
        vc.index_copy_(2, input_pos, v)
        return kc, vc


def linear(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``mod(x)``; a plain ``nn.Linear`` through :func:`~spense.runtime.dense.dense_linear` (cuBLAS, or the
    weight-streaming kernel where it is faster at this shape and token count; on CPU ``F.linear``)."""
    return dense_linear(x, mod.weight, mod.bias) if type(mod) is nn.Linear else mod(x)


def dense_shapes(model: nn.Module) -> set[tuple[int, int]]:
    """The ``(N, K)`` of every weight that :func:`linear` or a fused plain projection passes to ``dense_linear``
    (members of a fused projection left out: they do not run apart)."""
    out, members = set(), set()
    for mod in model.modules():
        if isinstance(mod, Attention) and mod.qkv_weight is not None:
            out.add(tuple(mod.qkv_weight.shape))
            members |= {id(mod.q_proj), id(mod.k_proj), id(mod.v_proj)}
        elif isinstance(mod, MLP) and mod.gate_up_weight is not None:
            out.add(tuple(mod.gate_up_weight.shape))
            members |= {id(mod.gate_proj), id(mod.up_proj)}
    out |= {(m.out_features, m.in_features) for m in model.modules() if type(m) is nn.Linear and id(m) not in members}
    return out


def fuse_linears(lins: tuple[nn.Module, ...]) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """One weight (and bias) for linears that read the same input: ``W = cat(W_i)`` along the
    outputs, so a decode step runs one GEMM instead of ``len(lins)``.  Only for plain ``nn.Linear``
    of one dtype and device (a SpenseLinear or FP8 linear keeps its own kernel); each linear then holds
    a view of its rows, so module names, state dicts and byte counts stay as they were.  None if the
    linears cannot be fused."""
    if not all(type(m) is nn.Linear for m in lins):
        return None
    ws = [m.weight.data for m in lins]
    if len({(w.dtype, w.device, w.shape[1]) for w in ws}) != 1:
        return None
    biased = [m.bias is not None for m in lins]
    if any(biased) and not all(biased):
        return None
    w = torch.cat(ws)
    b = torch.cat([m.bias.data for m in lins]) if all(biased) else None
    o = 0
    for m in lins:
        n = m.out_features
        m.weight.data = w[o:o + n]
        if b is not None:
            m.bias.data = b[o:o + n]
        o += n
    return w, b


def _drop_fused_state(module, state_dict, prefix, local_metadata):
    """State-dict hook: a fused projection's rows are already its members' (``q_proj.*``...)."""
    for k in [k for k in state_dict if k.startswith((prefix + "qkv_fused.", prefix + "gate_up_fused."))]:
        del state_dict[k]


class Attention(nn.Module):
    FUSED = ("q_proj", "k_proj", "v_proj")  # what fuse() joins (replacing one of them unfuses)

    def __init__(self, a: ModelArgs):
        super().__init__()
        self._register_state_dict_hook(_drop_fused_state)
        self.n_head, self.n_kv, self.hd = a.n_head, a.n_kv_head, a.head_dim
        self.q_proj = nn.Linear(a.dim, a.n_head * a.head_dim, bias=a.attn_bias)
        self.k_proj = nn.Linear(a.dim, a.n_kv_head * a.head_dim, bias=a.attn_bias)
        self.v_proj = nn.Linear(a.dim, a.n_kv_head * a.head_dim, bias=a.attn_bias)
        self.o_proj = nn.Linear(a.n_head * a.head_dim, a.dim, bias=a.o_bias)
        if a.qk_norm:
            self.q_norm = RMSNorm(a.head_dim, a.eps)
            self.k_norm = RMSNorm(a.head_dim, a.eps)
        self.kv_cache: KVCache | None = None
        self.impl = "sdpa"  # or "matmul", "split" (Transformer.set_attention)
        self.fused = False  # split: decode steps through spense::decode_attention_fused (set_attention)
        self.operand = False  # and its output written as the o projection's operand (SPENSE_ATTN_OPERAND)
        self.register_buffer("qkv_weight", None, persistent=False)  # set by fuse()
        self.register_buffer("qkv_bias", None, persistent=False)
        self.qkv_fused = None  # set by fuse(): q, k, v as one Spense or FP8 layer (spense.runtime.fuse)

    def fuse(self) -> bool:
        """q, k, v through one GEMM (:func:`fuse_linears`) when all three are plain linears, or one
        Spense kernel when they share their dense columns, or one FP8 layer
        (:func:`~spense.runtime.fuse.fuse_group`)."""
        f = fuse_linears((self.q_proj, self.k_proj, self.v_proj))
        if f is not None:
            self.qkv_weight, self.qkv_bias = f
            return True
        if self.qkv_fused is None:
            self.qkv_fused = fuse_group((self.q_proj, self.k_proj, self.v_proj))
        return self.qkv_fused is not None

    def unfuse(self) -> None:
        """Back to three GEMMs (a projection is being replaced, e.g. by a SpenseLinear)."""
        self.qkv_weight = self.qkv_bias = None
        if self.qkv_fused is not None:
            unfuse_rows(self.qkv_fused)
            self.qkv_fused = None

    def forward(self, x, cos, sin, input_pos, mask, kv_len: int):
        B, T, _ = x.shape
        nq, nk = self.n_head * self.hd, self.n_kv * self.hd
        if self.qkv_weight is not None:
            q, k, v = dense_linear(x, self.qkv_weight, self.qkv_bias).split([nq, nk, nk], dim=-1)
        elif self.qkv_fused is not None:
            q, k, v = self.qkv_fused(x).split([nq, nk, nk], dim=-1)
        else:
            q, k, v = linear(self.q_proj, x), linear(self.k_proj, x), linear(self.v_proj, x)
        g = self.n_head // self.n_kv
        if self.fused and T == 1:  # decode: the norms, RoPE and the cache writes in the split kernel
            qn = (self.q_norm.weight, self.k_norm.weight) if hasattr(self, "q_norm") else (None, None)
            # SPENSE_ATTN_OPERAND: y written as the o projection's operand, where it reads one
            form = operand_form(self.o_proj, B, x.is_cuda) if self.operand and q.dtype == torch.bfloat16 else 0
            y = decode_attention_fused(q.view(B, self.n_kv, g, self.hd), k.view(B, self.n_kv, self.hd),
                                       v.view(B, self.n_kv, self.hd), *qn, cos[:, 0, 0], sin[:, 0, 0],
                                       self.kv_cache.k, self.kv_cache.v, input_pos, mask[:, 0],
                                       self.q_norm.eps if qn[0] is not None else 0.0, form)
            if form:
                return linear_on_operand(self.o_proj, y, B, form, q.dtype).view(B, T, -1)
            return linear(self.o_proj, y.view(B, T, self.n_head * self.hd))
        q = q.unflatten(-1, (self.n_head, self.hd))
        k = k.unflatten(-1, (self.n_kv, self.hd))
        v = v.unflatten(-1, (self.n_kv, self.hd))
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        kc, vc = self.kv_cache.update(input_pos, k, v)
        kc, vc = kc[:, :, :kv_len], vc[:, :, :kv_len]
        # fold the g query heads of a KV head into the query length: (B, H_kv, g*T, D), no K/V copies
        qg = q.reshape(B, self.n_kv, g * T, self.hd)
        m = mask.unsqueeze(1) if g == 1 else mask.unsqueeze(1).repeat(1, 1, g, 1)  # (B, 1, g*T, L)
        if self.impl == "split" and T == 1:  # decode: the split-KV kernel (spense.runtime.attention)
            y = decode_attention(qg, kc, vc, mask[:, 0])
        elif self.impl == "matmul":  # two batched GEMMs in the cache dtype, the softmax in float32
            s = (qg * self.hd ** -0.5) @ kc.transpose(-1, -2)
            p = torch.softmax(s.float() + m.float(), dim=-1).to(vc.dtype)
            y = p @ vc
        else:
            y = F.scaled_dot_product_attention(qg, kc, vc, attn_mask=m)
        y = y.reshape(B, self.n_head, T, self.hd).transpose(1, 2).reshape(B, T, self.n_head * self.hd)
        return linear(self.o_proj, y)


class MLP(nn.Module):
    FUSED = ("gate_proj", "up_proj")

    def __init__(self, a: ModelArgs):
        super().__init__()
        self._register_state_dict_hook(_drop_fused_state)
        self.gate_proj = nn.Linear(a.dim, a.intermediate_size, bias=a.mlp_bias)
        self.up_proj = nn.Linear(a.dim, a.intermediate_size, bias=a.mlp_bias)
        self.down_proj = nn.Linear(a.intermediate_size, a.dim, bias=a.mlp_bias)
        self.register_buffer("gate_up_weight", None, persistent=False)  # set by fuse()
        self.gate_up_fused = None  # set by fuse(): gate and up as one Spense or FP8 layer

    def fuse(self) -> bool:
        """gate and up through one GEMM (:func:`fuse_linears`) when both are plain linears, or one
        Spense kernel when they share their dense columns, or one FP8 layer; never with biases (``mlp_bias``)."""
        if self.gate_proj.bias is not None or self.up_proj.bias is not None:
            return False
        f = fuse_linears((self.gate_proj, self.up_proj))
        if f is not None:
            self.gate_up_weight = f[0]
            return True
        if self.gate_up_fused is None:
            self.gate_up_fused = fuse_group((self.gate_proj, self.up_proj))
        return self.gate_up_fused is not None

    def unfuse(self) -> None:
        self.gate_up_weight = None
        if self.gate_up_fused is not None:
            unfuse_rows(self.gate_up_fused)
            self.gate_up_fused = None

    def forward(self, x):
        if self.gate_up_weight is not None:
            g, u = dense_linear(x, self.gate_up_weight).chunk(2, dim=-1)
            return linear(self.down_proj, F.silu(g) * u)
        if self.gate_up_fused is not None:
            g, u = self.gate_up_fused(x).chunk(2, dim=-1)
            return linear(self.down_proj, F.silu(g) * u)
        return linear(self.down_proj, F.silu(linear(self.gate_proj, x)) * linear(self.up_proj, x))


class Block(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.input_layernorm = RMSNorm(a.dim, a.eps)
        self.self_attn = Attention(a)
        self.post_attention_layernorm = RMSNorm(a.dim, a.eps)
        self.mlp = MLP(a)

    def forward(self, r, d, cos, sin, input_pos, mask, kv_len: int):
        """One block on the residual stream ``r + d`` (``d`` None: ``r``); returns ``(h, m)``, the next block's
        ``(r, d)``: h = r + d + attention, m = MLP(norm(h)).  Each norm reads its input through
        :func:`residual_sum`."""
        x = r if d is None else r + d
        a = self.self_attn(self.input_layernorm(residual_sum(d, r, x)), cos, sin, input_pos, mask, kv_len)
        h = x + a
        return h, self.mlp(self.post_attention_layernorm(residual_sum(a, x, h)))


@functools.lru_cache(maxsize=None)
def norm_parts() -> bool:
    """Whether :func:`residual_sum` gives a norm its input as a sum of its own (``SPENSE_NORM_PARTS``, read once; 0
    or 1, default 0).  Off until Inductor's GPU code shows the gathers in the norms' kernels: the 8B BF16 step ran
    as fast with it as without, in one run (3.478 / 3.481 ms at B = 1, 4.006 / 3.998 at B = 8; results
    wgsd_2026-12-02 folder bk)."""
    return _env_int("SPENSE_NORM_PARTS", 0, 0, 1) == 1


def residual_sum(d, r, s):
    """An RMSNorm's input ``s = r + d`` (``d`` None: ``r``), given as a sum of its own, ``d + r`` (the same values in
    eager mode; compiled, Inductor may keep a sum it inlines in float32 instead of rounding it to bf16 first, so the
    norm's input can differ from the residual's in its last bits), instead of the residual ``s`` that the next block
    adds to.  The planned Spense layer after the norm reads its input permuted (``xops.x_perm``), a gather.  From
    ``s``, Inductor makes that gather a second kernel wherever it makes ``s`` a buffer of the norm's own kernel, which
    cannot read its own output at other indices (~17 of the 8B step's 72 norms, results wgsd_2026-12-02 folder bf);
    from ``d + r`` the norm's kernel reads ``d`` and ``r``, written before it.  Unless :func:`norm_parts`: ``s``
    itself."""
    return s if d is None or not norm_parts() else d + r


class Decoder(nn.Module):
    """``model.*`` of the HF tree: embeddings, blocks, final norm, RoPE tables."""

    def __init__(self, a: ModelArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab_size, a.dim)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.n_layer))
        self.norm = RMSNorm(a.dim, a.eps)


class Transformer(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.args = a
        self.model = Decoder(a)
        self.lm_head = nn.Linear(a.dim, a.vocab_size, bias=False)
        self.max_batch = self.max_len = 0
        self.register_buffer("inv_freq", rope_inv_freq(a.head_dim, a.rope_theta, a.rope_scaling), persistent=False)

    def fuse_projections(self) -> int:
        """Fuse q/k/v and gate/up of every block where they are plain linears (the dense model, the
        dense layers of a whole-layer mix), uncompacted Spense layers over the same dense columns, or
        FP8 layers (:func:`~spense.runtime.fuse.fuse_group`); returns how many groups were fused.  Call
        it after the model is on its device, and before compacting: a later ``.to()`` would copy the
        fused weights apart from the views, and compacted Spense layers no longer fuse."""
        return sum(int(blk.self_attn.fuse()) + int(blk.mlp.fuse()) for blk in self.model.layers)

    def set_attention(self, impl: str) -> None:
        """How attention runs: ``"sdpa"``: ``F.scaled_dot_product_attention`` (its backend picked by
        torch, or by an ``sdpa_kernel`` context); ``"matmul"``: ``softmax(float(q k^T / sqrt(D)) +
        mask) v`` as two batched GEMMs in the cache dtype (transformers' eager rounding points), no
        float32 copy of K and V; ``"split"``: decode steps through the split-KV kernel
        ``spense::decode_attention`` (:mod:`spense.runtime.attention`), prefill through SDPA; with
        ``SPENSE_ATTN_FUSED`` (default on, :func:`~spense.runtime.attention.fused_on`) through
        ``spense::decode_attention_fused``: the q/k norms, RoPE and both cache writes in that kernel too."""
        if impl not in ("sdpa", "matmul", "split"):
            raise InputError(f"attention must be 'sdpa', 'matmul' or 'split', got {impl!r}")
        fused = impl == "split" and fused_on()
        for blk in self.model.layers:
            blk.self_attn.impl, blk.self_attn.fused = impl, fused
            blk.self_attn.operand = fused and operand_on()

    def setup_caches(self, batch: int, length: int) -> None:
        """Allocate the static KV cache for ``batch`` rows of ``length`` slots (rounded up)."""
        length = -(-length // KV_BLOCK) * KV_BLOCK
        if batch <= self.max_batch and length <= self.max_len:
            return
        emb = self.model.embed_tokens.weight
        for blk in self.model.layers:
            blk.self_attn.kv_cache = None
        for blk in self.model.layers:
            blk.self_attn.kv_cache = KVCache(batch, self.args.n_kv_head, length, self.args.head_dim,
                                             emb.dtype, emb.device)
        self.max_batch, self.max_len = batch, length

    def forward(self, idx: torch.Tensor, input_pos: torch.Tensor, kv_len: int | None = None,
                start: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, T, V)`` float32 of the tokens ``idx`` ``(B, T)`` placed at ``input_pos``."""
        B, T = idx.shape
        kv_len = self.max_len if kv_len is None else kv_len
        dev = idx.device
        if start is None:
            start = torch.zeros(B, dtype=torch.long, device=dev)
        pos = (input_pos[None, :] - start[:, None]).clamp_min(0).float()  # (B, T) RoPE positions
        ang = pos[..., None] * self.inv_freq  # (B, T, D/2)
        ang = torch.cat((ang, ang), dim=-1)[:, None]  # (B, 1, T, D)
        cos, sin = ang.cos(), ang.sin()
        j = torch.arange(kv_len, device=dev)
        ok = (j[None, None, :] <= input_pos[None, :, None]) & (j[None, None, :] >= start[:, None, None])
        ok = ok | (j[None, None, :] == input_pos[None, :, None])  # padding queries see themselves: no NaN
        x = self.model.embed_tokens(idx)
        mask = torch.zeros(ok.shape, dtype=x.dtype, device=dev).masked_fill(~ok, float("-inf"))
        d = None
        for blk in self.model.layers:
            x, d = blk(x, d, cos, sin, input_pos, mask, kv_len)
        return linear(self.lm_head, self.model.norm(x if d is None else d + x)).float()
