"""Harness-level fused ops for the end-to-end benchmark, applied identically to every variant.

transformers' eager decoder step spends a large share of a decode step outside the linear layers
(measured on an H100 with Qwen3-8B, batch 8: ~3.3 ms/step copying K/V in ``repeat_kv``, ~1 ms in
unfused RMSNorm).  That time is the same for the dense and the Spense model, so it only dilutes the
comparison; a serving engine does not pay it.  ``--fused-ops`` (the default of ``spense bench``)
removes the two largest items:

* **GQA decode attention without K/V copies** (attention implementation ``"spense_gqa"``): for a
  one-token query the ``g = H_q / H_kv`` query heads that share a KV head are folded into the query
  length, ``q (B, H_kv, g, D)`` against the static cache's ``K, V (B, H_kv, L, D)``, one SDPA call with
  the same mask row - exactly what newer transformers do themselves (``pack_gqa``).  Multi-token
  queries (prefill) go to transformers' own ``sdpa`` function unchanged;
* **fused RMSNorm** (one Triton kernel per call instead of ~6 elementwise/reduction kernels) for the
  Llama / Qwen2 / Qwen3 / Mistral RMSNorm, with the same rounding points as transformers' module
  (normalise in float32, round to the activation dtype, multiply by the weight).

Both are plain torch on CPU (tests); both are CUDA-graph safe.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

GQA_NAME = "spense_gqa"
RMSNORM_CLASSES = ("LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "MistralRMSNorm")


# --------------------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------------------
def gqa_sdpa_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                       is_causal=None, **kwargs):
    """transformers attention function: one-token GQA queries without repeating K/V."""
    B, Hq, q, D = query.shape
    Hkv = key.shape[1]
    if q == 1 and Hq != Hkv and Hq % Hkv == 0 and kwargs.get("softcap") is None:
        g = Hq // Hkv
        qg = query.reshape(B, Hkv, g, D)
        mask = attention_mask
        if mask is not None and mask.dim() == 4:
            mask = mask[:, :, :, : key.shape[-2]]  # (B, 1, 1, L): broadcast over heads and the g queries
        out = F.scaled_dot_product_attention(qg, key, value, attn_mask=mask, dropout_p=0.0, scale=scaling,
                                             is_causal=False)
        return out.reshape(B, Hq, 1, D).transpose(1, 2).contiguous(), None
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, **kwargs)


def use_gqa_attention(model: nn.Module) -> bool:
    """Register ``spense_gqa`` (attention + its SDPA mask) and switch ``model`` to it; False if refused."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(GQA_NAME, gqa_sdpa_attention)
        AttentionMaskInterface.register(GQA_NAME, sdpa_mask)
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(GQA_NAME)
        else:  # pragma: no cover
            model.config._attn_implementation = GQA_NAME
        return getattr(model.config, "_attn_implementation", None) == GQA_NAME
    except Exception as e:  # pragma: no cover - transformers without the interfaces
        warnings.warn(f"GQA decode attention not available ({e}); keeping sdpa", RuntimeWarning, stacklevel=2)
        return False


def restore_sdpa(model: nn.Module) -> None:
    try:
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("sdpa")
        else:  # pragma: no cover
            model.config._attn_implementation = "sdpa"
    except Exception:  # pragma: no cover
        pass


# --------------------------------------------------------------------------------------------------
# RMSNorm
# --------------------------------------------------------------------------------------------------
_KERNEL = None


def _rmsnorm_kernel():
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    try:
        import triton
        import triton.language as tl
    except Exception:  # pragma: no cover
        _KERNEL = False
        return False

    @triton.jit
    def _rmsnorm_rows(x_ptr, w_ptr, y_ptr, N, stride_x, stride_y, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        m = offs < N
        x = tl.load(x_ptr + row * stride_x + offs, mask=m, other=0.0).to(tl.float32)
        var = tl.sum(x * x, axis=0) / N
        h = x * (1.0 / tl.sqrt(var + eps))
        h = h.to(x_ptr.dtype.element_ty).to(tl.float32)  # transformers rounds here (hidden.to(input_dtype))
        w = tl.load(w_ptr + offs, mask=m, other=0.0).to(tl.float32)
        tl.store(y_ptr + row * stride_y + offs, (h * w).to(y_ptr.dtype.element_ty), mask=m)

    _KERNEL = _rmsnorm_rows
    return _rmsnorm_rows


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``weight * (x.float() * rsqrt(mean(x^2) + eps)).to(x.dtype)`` (transformers' RMSNorm)."""
    out_dtype = torch.promote_types(weight.dtype, x.dtype)
    kern = _rmsnorm_kernel() if x.device.type == "cuda" else False
    N = x.shape[-1]
    if not kern or N > 16384:
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        return weight * h.to(x.dtype)
    import triton

    x2 = x.reshape(-1, N)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    y = torch.empty(x2.shape, dtype=out_dtype, device=x.device)
    if x2.shape[0]:
        bs = triton.next_power_of_2(N)
        kern[(x2.shape[0],)](x2, weight, y, N, x2.stride(0), y.stride(0), float(eps), BLOCK=bs,
                             num_warps=4 if bs <= 2048 else 8)
    return y.reshape(x.shape)


class FusedRMSNorm(nn.Module):
    def __init__(self, weight: nn.Parameter, eps: float):
        super().__init__()
        self.weight = weight
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rmsnorm(x, self.weight, self.variance_epsilon)


def fuse_rmsnorms(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every known RMSNorm by :class:`FusedRMSNorm` (same weight); returns undo records."""
    undo = []
    for pname, parent in list(model.named_modules()):
        for cname, child in list(parent.named_children()):
            if type(child).__name__ in RMSNORM_CLASSES and hasattr(child, "variance_epsilon"):
                setattr(parent, cname, FusedRMSNorm(child.weight, child.variance_epsilon))
                undo.append((parent, cname, child))
    return undo


def unfuse(undo: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for parent, cname, child in undo:
        setattr(parent, cname, child)
