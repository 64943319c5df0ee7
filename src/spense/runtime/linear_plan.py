"""How :class:`~spense.runtime.linear.SpenseLinear` hands x to its op at a planned decode size: the mixin
:class:`InputPlan` (``plan`` and the decisions ``forward`` and :mod:`spense.runtime.attn_operand` read).

At the M buckets :meth:`InputPlan.plan` fixes for the mma.sp kernel, ``forward`` passes x in the kernel's own order,
built as plain tensor ops that torch.compile fuses into the op producing x:

- x_perm (:func:`~spense.runtime.xops.x_perm`: ``[b, 32 c + 8 t + 2 i + e] = x[b, 32 c + 8 i + 2 t + e]``) where the
  register kernel reads rows directly (small M, no column gather), else x's fragments
  (:func:`~spense.runtime.xops.gathered_fragments`);
- of bf16 x, or of x's f16 operand (``x * 2^-8`` in f16, :func:`~spense.runtime.xops.f16_operand`) for e4m3 weights;
- beside x itself, or beside an uninitialised tensor of x's shape where the op reads nothing else of x.
"""

from __future__ import annotations

import torch

from spense.runtime.mmasp import default_stages
from spense.runtime.shapes import DECODE_MAX_M, bucket as _bucket
from spense.runtime.wgsp import wgsd_f16_x
from spense.runtime.xops import (F16_MAX_M, f16_operand, f16_x, gathered_fragments, operand_only, x_perm_max_m,
                                 xfrag_plan_min_m)


class InputPlan:
    """The input side of :class:`~spense.runtime.linear.SpenseLinear` (its attributes ``_frag_buckets``,
    ``_perm_buckets``, ``_xperm``, ``_kernel``, ``backend``, ``choice``, ``mmasp_cfg``, and its methods
    ``_auto_choice``, ``_wgsd_serves``, ``_kw``)."""

    def plan(self, ms, fragments: bool = True) -> "InputPlan":
        """Fix ``auto``'s choice for the decode sizes ``ms`` now (eager, before a compile or a graph
        capture).  ``fragments``: where the choice is the mma.sp kernel, :meth:`forward` builds x in
        the kernel's fragment order as plain tensor ops, which torch.compile fuses into the op that
        produces x (pass False without torch.compile: then they would be three more kernels per layer
        and step, which cost more than the faster kernel saves); not below
        :func:`~spense.runtime.xops.xfrag_plan_min_m`."""
        dev = self.values.device if self._kernel is None else self._kernel.sv.device
        self._frag_buckets, self._perm_buckets = set(), set()
        if self._fused or dev.type != "cuda" or self.backend not in ("auto", "mmasp"):
            return self  # a fused projection's member never runs: its fused layer is planned
        mm = self._kernel is not None or self.scale is not None or self.values.dtype == torch.bfloat16
        for M in ms:
            if M > DECODE_MAX_M:
                continue
            c = self._auto_choice(M) if self.backend == "auto" else "mmasp"
            wgsd = self._wgsd_serves(M)  # (a compacted layer's stream-K workspace is made by compact())
            if fragments and mm and c == "mmasp" and M >= xfrag_plan_min_m() and not wgsd:
                if self._x_perm_fits(M):
                    self._perm_buckets.add(_bucket(M))
                else:
                    self._frag_buckets.add(_bucket(M))
                    self._xperm = self._kw().xperm
        return self

    def _x_perm_fits(self, M: int) -> bool:
        """Whether ``forward`` passes :func:`~spense.runtime.xops.x_perm` of x at this planned M instead
        of fragments: M <= ``SPENSE_MMASP_XPERM`` (:func:`~spense.runtime.xops.x_perm_max_m`), no column
        gather, K a multiple of 64, and the register kernel at one row tile per CTA."""
        cfg = self.mmasp_cfg.get(_bucket(M), (1, None))
        return (M <= x_perm_max_m() and self._kw().xperm is None and self.in_features % 64 == 0
                and default_stages() == 0 and cfg[0] in (None, 1))

    def _fragments(self, x2: torch.Tensor) -> torch.Tensor:
        """x in the mma.sp kernel's fragment order for a planned M (:meth:`plan`); x's f16 operand where this
        compacted FP8 layer runs the stream-K form with x in f16 (:func:`~spense.runtime.wgsp.wgsd_f16_x`);
        else empty."""
        M = x2.shape[0]
        if self.wgsd_f16(M):
            return f16_operand(x2.to(torch.bfloat16))
        if _bucket(M) not in self._frag_buckets:
            return x2.new_empty(0, dtype=torch.bfloat16)
        x2 = x2.to(torch.bfloat16)
        return gathered_fragments(f16_operand(x2) if self._mmasp_f16(M) else x2, self._xperm)

    def wgsd_f16(self, M: int) -> bool:
        """Whether this compacted FP8 layer runs the stream-K form on x's f16 operand at M tokens
        (:func:`~spense.runtime.wgsp.wgsd_f16_x` where :meth:`_wgsd_serves`): :meth:`_fragments` passes that
        operand, and :func:`~spense.runtime.attn_operand.operand_form` has the attention write it."""
        return (self._kernel is not None and self._kernel.fp8 and wgsd_f16_x(self._kernel, M)
                and self._wgsd_serves(M))

    def _mmasp_f16(self, M: int) -> bool:
        """Whether the mma.sp kernel takes x's f16 operand at this planned M: FP8 weights, M <= 16 and
        ``SPENSE_MMASP_F16=1`` (:func:`~spense.runtime.xops.f16_x`)."""
        fp8 = self._kernel.fp8 if self._kernel is not None else self.scale is not None
        return fp8 and M <= F16_MAX_M and f16_x()

    def _reads_operand_only(self, b: int, perm: bool, cuda: bool, M: int | None = None) -> bool:
        """Whether the op, given x's planned operand for bucket ``b`` (``perm``: x_perm of its f16 operand, else
        fragments), reads x itself for nothing but its shape (M, K, dtype, device): on CUDA, where the mma.sp
        kernel runs the planned bucket (x_perm: ``auto`` or ``mmasp``; fragments: ``auto``'s choice of it there,
        or ``mmasp``) and, for a compacted layer, the M of this call (default ``b``) is not the warpgroup
        kernel's (:meth:`_wgsd_serves`: it reads x, and its fallback rebuilds fragments from x), and
        :func:`~spense.runtime.xops.operand_only` says so.  Then :meth:`forward` passes an uninitialised tensor
        of x's shape instead of x."""
        if not (cuda and operand_only()) or self.backend not in ("auto", "mmasp"):
            return False
        if self._kernel is not None and self._wgsd_serves(b if M is None else M):
            return False
        return perm or self.backend == "mmasp" or self.choice.get(b) == "mmasp"

    def input_plan(self, M: int, cuda: bool) -> tuple[bool, bool, bool]:
        """How :meth:`forward` passes x at ``M`` tokens, as ``(perm, f16, only)``: ``perm``, x_perm of x (M's
        bucket planned for it, :meth:`plan`), else x's fragments where planned; ``f16``, of x's f16 operand
        (:meth:`_mmasp_f16`); ``only``, the op reads x for its shape alone (:meth:`_reads_operand_only`), so an
        uninitialised tensor of x's shape goes in x's place.  :func:`~spense.runtime.attn_operand.operand_form`
        reads the same plan."""
        b = _bucket(M)
        perm, f16 = b in self._perm_buckets, self._mmasp_f16(M)
        if perm:  # bf16 x_perm is passed as x itself
            return perm, f16, f16 and self._reads_operand_only(b, True, cuda, M)
        return perm, f16, b in self._frag_buckets and self._reads_operand_only(b, False, cuda, M)
