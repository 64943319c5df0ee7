"""The decoder the engine runs: a Llama-family transformer written for decoding (gpt-fast style).

One module tree with the Hugging Face names (``model.layers.3.mlp.down_proj``), so that HF weights
and Spense manifests map onto it by name; every linear is whatever module it was given
(``nn.Linear``, :class:`~spense.runtime.SpenseLinear`, an FP8 linear).  What it computes is
:class:`~spense.engine.args.ModelArgs` (``llama``, ``mistral``, ``qwen2``, ``qwen3``, ``gemma3_text``).

Static KV cache ``(B, H_kv, S, D)`` per layer; ``forward(idx, input_pos, kv_len, start)``:

* ``input_pos`` ``(T,)`` cache slots of the ``T`` new tokens (the same for every row);
* ``kv_len`` (a Python int, a multiple of :data:`KV_BLOCK`): attention reads only the first
  ``kv_len`` slots - the filled part rounded up, so a compiled / graphed step is specialised per
  length bucket instead of reading the whole cache;
* ``start`` ``(B,)`` the first real slot of each row (left padding of a batch of prompts): keys
  before it are masked and RoPE positions count from it.

A decode step (``T = 1``) given its ``kv_len`` sits in that bucket's last block of slots (``pos >= kv_len - KV_BLOCK``,
as the engine's steps do), so a sliding layer's keys all lie in the slots from ``kv_len - KV_BLOCK - window`` on
(rounded down to a block): that layer reads only those (:func:`window_start`), the fused decode kernel too.

Attention: ``softmax(s q k^T + mask) v`` (``s = 1 / sqrt(D)``, or Gemma's ``query_pre_attn_scalar^-1/2``) with
``mask = 0`` where ``start_b <= j <= pos_i`` (a sliding layer: also ``j > pos_i - window``), ``-inf`` elsewhere;
grouped-query heads are folded into the query length (no K/V copies); through SDPA, two batched GEMMs or a split-KV
decode kernel (:meth:`Transformer.set_attention`).
RMSNorm: ``w * (x / sqrt(mean(x^2) + eps))`` in float32, rounded to the activation dtype before the
weight (transformers' rounding points); Gemma's: ``(1 + w) * (x / sqrt(mean(x^2) + eps))`` in float32, then
rounded.  RoPE: ``x cos + rotate_half(x) sin`` (halves, not pairs); Gemma 3's sliding layers take their own base.
A Gemma block: ``h = x + N2(attention(N1(x)))``, ``out = h + N4(MLP(N3(h)))``; its embeddings are scaled by
``sqrt(dim)`` rounded to the dtype, and its MLP is ``down(gelu_tanh(gate x) * up x)``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from spense.engine.args import SUPPORTED, ModelArgs, rope_inv_freq, rope_scaling_of, rope_tables  # noqa: F401
from spense.errors import InputError
from spense.runtime.attention import decode_attention, decode_attention_fused, fused_on, operand_on, rotate_half
from spense.runtime.attn_operand import linear_on_operand, operand_form
from spense.runtime.dense import dense_linear
from spense.runtime.fuse import fuse_group, unfuse_rows
from spense.runtime.xops import _env_int, read_once

KV_BLOCK = 128  # attention length granularity (and the cache length's)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, offset: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim) if offset else torch.ones(dim))
        self.eps, self.offset = eps, offset  # offset: Gemma's (1 + w), the product in float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.offset:
            return (h * (1.0 + self.weight.float())).to(x.dtype)
        return self.weight * h.to(x.dtype)


def activation(name: str):
    """The MLP's activation (:data:`~spense.engine.args.ACTIVATIONS`' names)."""
    if name == "gelu_tanh":
        return functools.partial(F.gelu, approximate="tanh")
    return F.gelu if name == "gelu" else F.silu


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


def dense_weights(model: nn.Module) -> dict[tuple[int, int], torch.Tensor]:
    """One weight for each ``(N, K)`` that :func:`linear` or a fused plain projection passes to ``dense_linear``
    (members of a fused projection left out: they do not run apart), the first met in module order."""
    out: dict[tuple[int, int], torch.Tensor] = {}
    members = set()
    for mod in model.modules():
        if isinstance(mod, Attention) and mod.qkv_weight is not None:
            out.setdefault(tuple(mod.qkv_weight.shape), mod.qkv_weight)
            members |= {id(mod.q_proj), id(mod.k_proj), id(mod.v_proj)}
        elif isinstance(mod, MLP) and mod.gate_up_weight is not None:
            out.setdefault(tuple(mod.gate_up_weight.shape), mod.gate_up_weight)
            members |= {id(mod.gate_proj), id(mod.up_proj)}
    for m in model.modules():
        if type(m) is nn.Linear and id(m) not in members:
            out.setdefault((m.out_features, m.in_features), m.weight)
    return out


def dense_shapes(model: nn.Module) -> set[tuple[int, int]]:
    """The ``(N, K)`` of :func:`dense_weights`."""
    return set(dense_weights(model))


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
            self.q_norm = RMSNorm(a.head_dim, a.eps, a.gemma)
            self.k_norm = RMSNorm(a.head_dim, a.eps, a.gemma)
        # the softmax scale where it is not 1 / sqrt(D) (SDPA's default; the split kernel's)
        self.scale = a.attn_scale if a.attn_scale and a.attn_scale != a.head_dim ** -0.5 else None
        self.sliding = False  # set by Block: this layer's mask and RoPE are the sliding ones
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

    def forward(self, x, cos, sin, input_pos, mask, kv_len: int, kv_lo: int = 0):
        """``kv_lo``: the first slot read (a sliding layer's decode step; the mask covers slots kv_lo..kv_len)."""
        B, T, _ = x.shape
        nq, nk = self.n_head * self.hd, self.n_kv * self.hd
        if self.qkv_weight is not None:
            q, k, v = dense_linear(x, self.qkv_weight, self.qkv_bias).split([nq, nk, nk], dim=-1)
        elif self.qkv_fused is not None:
            q, k, v = self.qkv_fused(x).split([nq, nk, nk], dim=-1)
        else:
            q, k, v = linear(self.q_proj, x), linear(self.k_proj, x), linear(self.v_proj, x)
        g = self.n_head // self.n_kv
        split = self.impl == "split" and T == 1 and self.scale is None  # decode through the split-KV kernels
        # SPENSE_ATTN_OPERAND: their y written as the o projection's operand, where it reads one
        form = operand_form(self.o_proj, B, x.is_cuda) if split and self.operand and q.dtype == torch.bfloat16 else 0
        if split and self.fused:  # the norms, RoPE and the cache writes in the split kernel too
            qn = (self.q_norm.weight, self.k_norm.weight) if hasattr(self, "q_norm") else (None, None)
            kc, vc, slot = self.kv_cache.k, self.kv_cache.v, input_pos
            if kv_lo:  # a sliding layer: the caches from its window's first slot on, the new slot counted from there
                kc, vc, slot = kc[:, :, kv_lo:], vc[:, :, kv_lo:], input_pos - kv_lo
            y = decode_attention_fused(q.view(B, self.n_kv, g, self.hd), k.view(B, self.n_kv, self.hd),
                                       v.view(B, self.n_kv, self.hd), *qn, cos[:, 0, 0], sin[:, 0, 0], kc, vc, slot,
                                       mask[:, 0], self.q_norm.eps if qn[0] is not None else 0.0, form)
            return self._o_proj(y, B, T, form, q.dtype)
        q = q.unflatten(-1, (self.n_head, self.hd))
        k = k.unflatten(-1, (self.n_kv, self.hd))
        v = v.unflatten(-1, (self.n_kv, self.hd))
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        kc, vc = self.kv_cache.update(input_pos, k, v)
        kc, vc = kc[:, :, kv_lo:kv_len], vc[:, :, kv_lo:kv_len]
        # fold the g query heads of a KV head into the query length: (B, H_kv, g*T, D), no K/V copies
        qg = q.reshape(B, self.n_kv, g * T, self.hd)
        m = mask.unsqueeze(1) if g == 1 else mask.unsqueeze(1).repeat(1, 1, g, 1)  # (B, 1, g*T, L)
        if split:  # the split-KV kernel (y as (B, H_kv, g, D): the o projection's order)
            return self._o_proj(decode_attention(qg, kc, vc, mask[:, 0], form), B, T, form, q.dtype)
        if self.impl == "matmul":  # two batched GEMMs in the cache dtype, the softmax in float32
            s = (qg * (self.scale or self.hd ** -0.5)) @ kc.transpose(-1, -2)
            p = torch.softmax(s.float() + m.float(), dim=-1).to(vc.dtype)
            y = p @ vc
        else:
            y = F.scaled_dot_product_attention(qg, kc, vc, attn_mask=m, scale=self.scale)
        y = y.reshape(B, self.n_head, T, self.hd).transpose(1, 2).reshape(B, T, self.n_head * self.hd)
        return linear(self.o_proj, y)

    def _o_proj(self, y: torch.Tensor, B: int, T: int, form: int, dtype: torch.dtype) -> torch.Tensor:
        """The o projection on a decode step's attention output ``y`` (T = 1) of ``dtype``, written in ``form``
        (:func:`~spense.runtime.attn_operand.operand_form`; 0: ``(B, H_kv, g, D)`` as is)."""
        if form:
            return linear_on_operand(self.o_proj, y, B, form, dtype).view(B, T, -1)
        return linear(self.o_proj, y.view(B, T, self.n_head * self.hd))


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
        self.act = activation(a.act)

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
            return linear(self.down_proj, self.act(g) * u)
        if self.gate_up_fused is not None:
            g, u = self.gate_up_fused(x).chunk(2, dim=-1)
            return linear(self.down_proj, self.act(g) * u)
        return linear(self.down_proj, self.act(linear(self.gate_proj, x)) * linear(self.up_proj, x))


class Block(nn.Module):
    def __init__(self, a: ModelArgs, i: int = 0):
        super().__init__()
        self.input_layernorm = RMSNorm(a.dim, a.eps, a.gemma)
        self.self_attn = Attention(a)
        self.self_attn.sliding = bool(a.sliding and a.sliding[i])
        self.post_attention_layernorm = RMSNorm(a.dim, a.eps, a.gemma)
        if a.gemma:  # Gemma: post_attention_layernorm normalises the attention's output; these, the MLP's in and out
            self.pre_feedforward_layernorm = RMSNorm(a.dim, a.eps, True)
            self.post_feedforward_layernorm = RMSNorm(a.dim, a.eps, True)
        self.mlp = MLP(a)
        self.parts = norm_parts()  # read here, not in the compiled step (Dynamo warns of a cached function there)

    def forward(self, r, d, cos, sin, input_pos, mask, kv_len: int, kv_lo: int = 0):
        """One block on the residual stream ``r + d`` (``d`` None: ``r``); returns ``(h, m)``, the next block's
        ``(r, d)``: h = r + d + attention, m = MLP(norm(h)) (Gemma: h = r + d + N2(attention), m = N4(MLP(N3(h)))).
        Each norm reads its input through :func:`residual_sum`."""
        x = r if d is None else r + d
        a = self.self_attn(self.input_layernorm(residual_sum(d, r, x, self.parts)), cos, sin, input_pos, mask, kv_len,
                           kv_lo)
        if hasattr(self, "pre_feedforward_layernorm"):
            a = self.post_attention_layernorm(a)
            h = x + a
            m = self.mlp(self.pre_feedforward_layernorm(residual_sum(a, x, h, self.parts)))
            return h, self.post_feedforward_layernorm(m)
        h = x + a
        return h, self.mlp(self.post_attention_layernorm(residual_sum(a, x, h, self.parts)))


@read_once
def norm_parts() -> bool:
    """Whether :func:`residual_sum` gives a norm its input as a sum of its own (``SPENSE_NORM_PARTS``, read once; 0
    or 1, default 0).  Off until Inductor's GPU code shows the gathers in the norms' kernels: the 8B BF16 step ran
    as fast with it as without, in one run (3.478 / 3.481 ms at B = 1, 4.006 / 3.998 at B = 8; results
    wgsd_2026-12-02 folder bk)."""
    return _env_int("SPENSE_NORM_PARTS", 0, 0, 1) == 1


def residual_sum(d, r, s, parts: bool):
    """An RMSNorm's input ``s = r + d`` (``d`` None: ``r``), given as a sum of its own, ``d + r`` (the same values in
    eager mode; compiled, Inductor may keep a sum it inlines in float32 instead of rounding it to bf16 first, so the
    norm's input can differ from the residual's in its last bits), instead of the residual ``s`` that the next block
    adds to.  The planned Spense layer after the norm reads its input permuted (``xops.x_perm``), a gather.  From
    ``s``, Inductor makes that gather a second kernel wherever it makes ``s`` a buffer of the norm's own kernel, which
    cannot read its own output at other indices (~17 of the 8B step's 72 norms, results wgsd_2026-12-02 folder bf);
    from ``d + r`` the norm's kernel reads ``d`` and ``r``, written before it.  Unless :func:`norm_parts`: ``s``
    itself (``parts``: its value, read when a :class:`Block` is made)."""
    return s if d is None or not parts else d + r


class Decoder(nn.Module):
    """``model.*`` of the HF tree: embeddings, blocks, final norm, RoPE tables."""

    def __init__(self, a: ModelArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab_size, a.dim)
        self.layers = nn.ModuleList(Block(a, i) for i in range(a.n_layer))
        self.norm = RMSNorm(a.dim, a.eps, a.gemma)


class Transformer(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.args = a
        self.model = Decoder(a)
        self.lm_head = nn.Linear(a.dim, a.vocab_size, bias=False)
        self.max_batch = self.max_len = 0
        self.register_buffer("inv_freq", None, persistent=False)
        self.register_buffer("inv_freq_local", None, persistent=False)  # the sliding layers' where it differs
        self.embed_scale = embed_scales(a.dim)  # Gemma's, by dtype
        self.init_rope()

    def init_rope(self, device: torch.device | None = None) -> None:
        """The RoPE frequency tables (float32) on ``device`` (:func:`~spense.engine.args.rope_tables`)."""
        full, local = rope_tables(self.args)
        self.inv_freq = full.to(device)
        self.inv_freq_local = None if local is None else local.to(device)

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
        # the fused kernel computes Llama's q/k norms and the 1 / sqrt(D) scale: not Gemma's
        fused = impl == "split" and fused_on() and not self.args.gemma and not self.args.attn_scale
        for blk in self.model.layers:
            blk.self_attn.impl, blk.self_attn.fused = impl, fused
            blk.self_attn.operand = impl == "split" and operand_on()

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
                start: torch.Tensor | None = None, last: bool = False) -> torch.Tensor:
        """Logits ``(B, T, V)`` float32 of the tokens ``idx`` ``(B, T)`` placed at ``input_pos``; ``last``: of the
        last position only, ``(B, 1, V)`` (a prefill: its ``B T V`` float32 logits would take 34 GB for 8 prompts of
        4,096 tokens at Gemma 3's 262,144 words)."""
        B, T = idx.shape
        lo = window_start(kv_len, self.args.window) if T == 1 and self.args.sliding and kv_len is not None else 0
        kv_len = self.max_len if kv_len is None else kv_len
        dev = idx.device
        if start is None:
            start = torch.zeros(B, dtype=torch.long, device=dev)
        pos = (input_pos[None, :] - start[:, None]).clamp_min(0).float()  # (B, T) RoPE positions
        x = self.model.embed_tokens(idx)
        if self.args.gemma:  # sqrt(dim) rounded to the dtype first, as transformers does
            x = x * self.embed_scale[x.dtype]
        full = rope(pos, self.inv_freq) + (mask_of(input_pos, start, kv_len, 0, x.dtype), 0)
        local = full
        if self.args.sliding:
            cs = full[:2] if self.inv_freq_local is None else rope(pos, self.inv_freq_local)
            local = cs + (mask_of(input_pos, start, kv_len, self.args.window, x.dtype, lo), lo)
        d = None
        for blk in self.model.layers:
            cos, sin, mask, kv_lo = local if blk.self_attn.sliding else full
            x, d = blk(x, d, cos, sin, input_pos, mask, kv_len, kv_lo)
        if last:
            x, d = x[:, -1:], (None if d is None else d[:, -1:])
        z = linear(self.lm_head, self.model.norm(x if d is None else d + x))
        c = self.args.final_softcap  # in the logits' dtype, as transformers does
        return (z if not c else torch.tanh(z / c) * c).float()


def embed_scales(dim: int) -> dict:
    """Gemma's embedding scale ``sqrt(dim)`` rounded to each float dtype (55.4256 -> 55.5 for 3072 in bf16)."""
    return {dt: float(torch.tensor(dim ** 0.5, dtype=dt, device="cpu"))
            for dt in (torch.bfloat16, torch.float16, torch.float32)}


def rope(pos: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` ``(B, 1, T, D)`` of RoPE positions ``pos`` ``(B, T)``: angles ``pos f_i``, each half twice."""
    ang = pos[..., None] * inv_freq  # (B, T, D/2)
    ang = torch.cat((ang, ang), dim=-1)[:, None]
    return ang.cos(), ang.sin()


def window_start(kv_len: int, window: int) -> int:
    """The first slot a sliding layer's decode step at ``pos >= kv_len - KV_BLOCK`` reads: every key it sees
    (``j > pos - window``) lies at or after ``kv_len - KV_BLOCK - window + 1``; rounded down to a block."""
    return max(0, (kv_len - KV_BLOCK - window + 1) // KV_BLOCK * KV_BLOCK)


def mask_of(input_pos: torch.Tensor, start: torch.Tensor, kv_len: int, window: int, dtype,
            lo: int = 0) -> torch.Tensor:
    """The additive mask ``(B, T, kv_len - lo)`` of slots ``lo <= j < kv_len``: 0 where ``start_b <= j <= pos_i``
    (and ``j > pos_i - window`` where ``window``), ``-inf`` elsewhere; a padding query (``pos_i < start_b``) sees
    itself, so that no row is all ``-inf`` (no NaN)."""
    j = torch.arange(lo, kv_len, device=input_pos.device)[None, None, :]
    p = input_pos[None, :, None]
    ok = (j <= p) & (j >= start[:, None, None])
    if window:
        ok = ok & (j > p - window)
    ok = ok | (j == p)
    return torch.zeros(ok.shape, dtype=dtype, device=input_pos.device).masked_fill(~ok, float("-inf"))
