"""The Spense format: one weight matrix = a 2:4 sparse region + a dense region.

A pruned ``nn.Linear`` weight ``W`` has shape ``(out, in)`` = ``(N, K)``.  Its *dense region* is a set
of whole output rows (``axis="rows"``) or whole input columns (``axis="cols"``) whose count is a
multiple of ``block`` (64 by default, so the dense GEMM stays hardware aligned).  Everything else is
the *sparse region*, gathered in index order:

* ``axis="rows"``: ``S = W[sparse_rows, :]`` of shape ``(N - d, K)``, ``D = W[dense_rows, :]``;
  ``y[:, sparse_rows] = x @ S.T`` and ``y[:, dense_rows] = x @ D.T``.
* ``axis="cols"``: ``S = W[:, sparse_cols]`` of shape ``(N, K - d)``, ``D = W[:, dense_cols]``;
  ``y = x[:, sparse_cols] @ S.T + x[:, dense_cols] @ D.T``.

In both cases every aligned group of ``m=4`` consecutive entries along the last (input) dimension of
``S`` has at most ``n=2`` nonzeros, which is exactly what sparse tensor cores need.  Since ``K`` is a
multiple of 4 and ``d`` a multiple of ``block`` (itself a multiple of 4), ``K - d`` stays a multiple
of 4.  Dense ratio 0 is pure 2:4; dense ratio 1 leaves ``W`` untouched.

The *structural density* of the format is ``rho = r + (1 - r) * n / m`` where ``r`` is the fraction
of the matrix in the dense region (62.5 % at ``r = 0.25``).

Packed storage (compressed values + metadata) lives in this module too, see :func:`pack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from spense.errors import FormatError

AXES = ("rows", "cols")
DEFAULT_BLOCK = 64


def dense_count(dim: int, ratio: float, block: int = DEFAULT_BLOCK) -> int:
    """Number of dense rows/cols for a dense ``ratio`` of a dimension of size ``dim``.

    ``d = block * round(ratio * dim / block)``, clipped to ``[0, dim]``; ``ratio == 1`` gives ``dim``
    even when ``dim`` is not a multiple of ``block``.
    """
    if not 0.0 <= float(ratio) <= 1.0:
        raise FormatError(f"dense ratio must be in [0, 1], got {ratio}")
    if block <= 0 or block % 4:
        raise FormatError(f"block must be a positive multiple of 4, got {block}")
    if ratio >= 1.0:
        return dim
    d = block * int(round(ratio * dim / block))
    return max(0, min(d, dim - dim % block))


def nm_group_nonzeros(w: torch.Tensor, m: int = 4) -> torch.Tensor:
    """Nonzero count of every aligned group of ``m`` consecutive entries along the last dim:
    ``c[..., g] = Σ_{j<m} [w[..., g·m + j] ≠ 0]``."""
    if w.shape[-1] % m:
        raise FormatError(f"last dimension {w.shape[-1]} is not a multiple of {m}")
    return (w != 0).reshape(*w.shape[:-1], w.shape[-1] // m, m).sum(-1)


def is_nm(w: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every aligned group of ``m`` along the last dim has at most ``n`` nonzeros:
    ``∀ g: c[..., g] ≤ n`` with ``c`` from :func:`nm_group_nonzeros` (an empty ``w`` is N:M)."""
    if w.numel() == 0:
        return True
    return bool((nm_group_nonzeros(w, m) <= n).all())


def complement(dim: int, idx: torch.Tensor) -> torch.Tensor:
    """Sorted indices of ``range(dim)`` that are not in ``idx``."""
    keep = torch.ones(dim, dtype=torch.bool, device=idx.device)
    keep[idx] = False
    return keep.nonzero().flatten()


@dataclass
class SpenseLayout:
    """Where the dense region of one ``(N, K)`` weight sits.

    ``dense_idx`` holds sorted, unique row indices (``axis="rows"``) or column indices
    (``axis="cols"``); its length is a multiple of ``block`` unless it covers the whole axis.
    """

    shape: tuple[int, int]
    axis: str = "cols"
    dense_idx: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    block: int = DEFAULT_BLOCK
    n: int = 2
    m: int = 4

    def __post_init__(self) -> None:
        self.shape = (int(self.shape[0]), int(self.shape[1]))
        self.dense_idx = torch.as_tensor(self.dense_idx, dtype=torch.long).flatten().cpu()

    # -- derived quantities -------------------------------------------------------------
    @property
    def axis_dim(self) -> int:
        """Size of the axis the dense region is taken along (N for rows, K for cols)."""
        return self.shape[0] if self.axis == "rows" else self.shape[1]

    @property
    def n_dense(self) -> int:
        return int(self.dense_idx.numel())

    @property
    def sparse_idx(self) -> torch.Tensor:
        return complement(self.axis_dim, self.dense_idx)

    @property
    def dense_ratio(self) -> float:
        """Fraction of the matrix in the dense region."""
        return self.n_dense / self.axis_dim if self.axis_dim else 0.0

    @property
    def structural_density(self) -> float:
        """``r + (1 - r) * n / m``: fraction of entries the format may hold as nonzeros."""
        r = self.dense_ratio
        return r + (1.0 - r) * self.n / self.m

    # -- checks -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check axis, index range/uniqueness/order and block alignment of the region sizes."""
        if self.axis not in AXES:
            raise FormatError(f"axis must be one of {AXES}, got {self.axis!r}")
        if not isinstance(self.block, int) or self.block < 1:
            raise FormatError(f"block must be a positive integer, got {self.block!r}")
        if not 0 < self.n <= self.m:
            raise FormatError(f"the sparse pattern must keep n of m with 0 < n <= m, got {self.n}:{self.m}")
        N, K = self.shape
        if N < 1 or K < 1:
            raise FormatError(f"shape must be positive, got {self.shape}")
        if K % self.m:
            raise FormatError(f"in_features {K} is not a multiple of {self.m}")
        idx = self.dense_idx
        if idx.numel():
            if int(idx.min()) < 0 or int(idx.max()) >= self.axis_dim:
                raise FormatError(
                    f"dense {self.axis} index out of range [0, {self.axis_dim}): "
                    f"min {int(idx.min())}, max {int(idx.max())}"
                )
            if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
                raise FormatError(f"dense {self.axis} indices must be sorted and unique")
        if self.n_dense != self.axis_dim and self.n_dense % self.block:
            raise FormatError(
                f"dense region has {self.n_dense} {self.axis}, not a multiple of block {self.block}"
            )

    # -- region views -------------------------------------------------------------------
    def split(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S, D)``: the gathered sparse region and dense region of ``w`` (see module doc)."""
        self._check_shape(w)
        dev = w.device
        sidx, didx = self.sparse_idx.to(dev), self.dense_idx.to(dev)
        if self.axis == "rows":
            return w.index_select(0, sidx), w.index_select(0, didx)
        return w.index_select(1, sidx), w.index_select(1, didx)

    def merge(self, sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split`: scatter both regions back into a ``(N, K)`` matrix."""
        w = torch.zeros(self.shape, dtype=sparse.dtype, device=sparse.device)
        sidx, didx = self.sparse_idx.to(w.device), self.dense_idx.to(w.device)
        dim = 0 if self.axis == "rows" else 1
        w.index_copy_(dim, sidx, sparse)
        w.index_copy_(dim, didx, dense.to(w.dtype))
        return w

    def check_weight(self, w: torch.Tensor) -> None:
        """Raise :class:`FormatError` unless ``w`` is a valid Spense weight for this layout."""
        self.validate()
        s, _ = self.split(w)
        if s.numel():
            bad = int((nm_group_nonzeros(s, self.m) > self.n).sum())
            if bad:
                raise FormatError(
                    f"sparse region breaks {self.n}:{self.m}: {bad} groups of {self.m} have more "
                    f"than {self.n} nonzeros"
                )

    def _check_shape(self, w: torch.Tensor) -> None:
        if tuple(w.shape) != self.shape:
            raise FormatError(f"weight shape {tuple(w.shape)} does not match layout {self.shape}")

    # -- (de)serialisation for spense.json -----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "axis": self.axis,
            "block": self.block,
            "n": self.n,
            "m": self.m,
            "dense_idx": self.dense_idx.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpenseLayout":
        shape = d.get("shape") if isinstance(d, dict) else None
        if not (isinstance(shape, (list, tuple)) and len(shape) == 2 and all(type(v) is int for v in shape)):
            raise FormatError(f"malformed layout record: shape must be two integers [N, K], got {shape!r}")
        for key in ("block", "n", "m"):
            v = d.get(key, 1)
            if type(v) is not int:  # JSON's 16.0 or true are no integer here
                raise FormatError(f"malformed layout record: {key} must be an integer, got {v!r}")
        try:
            lay = cls(
                shape=tuple(shape),
                axis=d["axis"],
                dense_idx=torch.tensor(d["dense_idx"], dtype=torch.long),
                block=int(d.get("block", DEFAULT_BLOCK)),
                n=int(d.get("n", 2)),
                m=int(d.get("m", 4)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"malformed layout record: {e}") from e
        lay.validate()
        return lay


def density(w: torch.Tensor) -> float:
    """Measured fraction of nonzero entries of ``w``: ``nnz(w) / max(1, numel(w))``."""
    return float((w != 0).sum()) / max(1, w.numel())


# ============================================================================================
# Packed storage
# ============================================================================================
#
# Canonical packed form of one Spense weight (what ``pack`` returns and what a packed checkpoint
# stores; kernels re-arrange it once at load time, see ``docs/runtime.md``):
#
# * ``values``: ``(R, Ks // 2)`` in the weight dtype (bf16 / fp16 / fp32, or float8_e4m3fn with
#   ``scale``; checked by :func:`check_fp8_weights`), where ``S`` is the gathered sparse region of shape
#   ``(R, Ks)`` (``R = N - d`` rows for ``axis="rows"``, ``R = N`` for ``axis="cols"``; ``Ks = K`` resp.
#   ``K - d``).  Every aligned group ``g`` of 4 entries of ``S[r]`` keeps exactly 2 values, stored at
#   ``values[r, 2g]`` and ``values[r, 2g + 1]`` in increasing column order.
# * ``meta``: ``(R, ceil(Ks / 8))`` uint8.  One 4-bit nibble per group: bits 0-1 = in-group position
#   of the first kept value (``i0``), bits 2-3 = position of the second (``i1``), ``i0 < i1``.
#   Group ``2j`` is the low nibble of byte ``j``, group ``2j + 1`` the high nibble (so the 4 bytes
#   of 32 consecutive columns read as one little-endian uint32 are exactly the per-row metadata word
#   of the PTX ``mma.sp`` f16/bf16 instruction).  When ``Ks / 4`` is odd the last high nibble is
#   padding and must be ``0x4`` (i0=0, i1=1).
#   Groups with fewer than 2 nonzeros are padded deterministically: the nonzero positions first,
#   then the lowest unused positions, both kept values sorted by position (an all-zero group
#   stores ``i0=0, i1=1`` with two zero values).
# * ``dense``: the dense region as a plain matrix, ``(N, d)`` for ``cols`` or ``(d, K)`` for ``rows``.
# * ``layout``: the :class:`SpenseLayout` (axis + dense indices; sparse indices are its complement).
# * ``scale``: ``None``, or ``(N,)`` float32 per-output-channel scales when values/dense are FP8:
#   ``W[n, :] = dequant(values/dense)[n, :] * scale[n]``.

_META_PAD = 0x4


@dataclass
class PackedSpense:
    """Packed (compressed 2:4 values + 2-bit metadata, dense region, indices) Spense weight."""

    layout: SpenseLayout
    values: torch.Tensor
    meta: torch.Tensor
    dense: torch.Tensor
    scale: torch.Tensor | None = None

    # -- derived --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.layout.shape

    @property
    def sparse_shape(self) -> tuple[int, int]:
        """``(R, Ks)`` of the (uncompressed) gathered sparse region."""
        N, K = self.layout.shape
        d = self.layout.n_dense
        return (N - d, K) if self.layout.axis == "rows" else (N, K - d)

    @property
    def dense_shape(self) -> tuple[int, int]:
        N, K = self.layout.shape
        d = self.layout.n_dense
        return (d, K) if self.layout.axis == "rows" else (N, d)

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    def nbytes(self) -> int:
        """Bytes the packed tensors hold: ``Σ_t numel(t) · element_size(t)`` over values, meta, dense and scale."""
        t = [self.values, self.meta, self.dense] + ([self.scale] if self.scale is not None else [])
        return sum(x.numel() * x.element_size() for x in t)

    def to(self, device=None, dtype=None) -> "PackedSpense":
        """Move to ``device``; ``dtype`` casts values/dense (not allowed for FP8-quantised weights)."""
        if dtype is not None and self.scale is not None and dtype != self.values.dtype:
            raise FormatError("cannot cast FP8-quantised packed weights; unpack first")
        v = self.values.to(device=device, dtype=dtype)
        dn = self.dense.to(device=device, dtype=dtype)
        return PackedSpense(
            self.layout,
            v,
            self.meta.to(device),
            dn,
            None if self.scale is None else self.scale.to(device),
        )

    # -- tensors for checkpoints ------------------------------------------------------------
    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """Flat ``{prefix.values, prefix.meta, prefix.dense[, prefix.scale]}`` dict for safetensors."""
        out = {
            f"{prefix}.values": self.values.contiguous(),
            f"{prefix}.meta": self.meta.contiguous(),
            f"{prefix}.dense": self.dense.contiguous(),
        }
        if self.scale is not None:
            out[f"{prefix}.scale"] = self.scale.contiguous()
        return out

    @classmethod
    def from_tensors(
        cls, layout: SpenseLayout, tensors: dict[str, torch.Tensor], prefix: str
    ) -> "PackedSpense":
        try:
            p = cls(
                layout,
                tensors[f"{prefix}.values"],
                tensors[f"{prefix}.meta"],
                tensors[f"{prefix}.dense"],
                tensors.get(f"{prefix}.scale"),
            )
        except KeyError as e:
            raise FormatError(f"packed weight {prefix!r} misses tensor {e}") from e
        p.validate()
        return p

    # -- checks -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`FormatError` unless shapes, dtypes and every metadata nibble are valid."""
        self.layout.validate()
        if self.layout.n != 2 or self.layout.m != 4:
            raise FormatError(f"packed storage supports 2:4 only, got {self.layout.n}:{self.layout.m}")
        R, Ks = self.sparse_shape
        if Ks % 4:
            raise FormatError(f"sparse region width {Ks} is not a multiple of 4")
        G = Ks // 4
        if tuple(self.values.shape) != (R, Ks // 2):
            raise FormatError(f"values shape {tuple(self.values.shape)} != expected {(R, Ks // 2)}")
        if self.meta.dtype != torch.uint8:
            raise FormatError(f"metadata dtype must be uint8, got {self.meta.dtype}")
        if tuple(self.meta.shape) != (R, (G + 1) // 2):
            raise FormatError(f"metadata shape {tuple(self.meta.shape)} != expected {(R, (G + 1) // 2)}")
        if tuple(self.dense.shape) != self.dense_shape:
            raise FormatError(f"dense shape {tuple(self.dense.shape)} != expected {self.dense_shape}")
        if self.dense.numel() and self.dense.dtype != self.values.dtype:
            raise FormatError(f"dense dtype {self.dense.dtype} != values dtype {self.values.dtype}")
        fp8 = _is_fp8(self.values.dtype)
        if fp8 != (self.scale is not None):
            raise FormatError("FP8 values need per-output-channel scales (and only FP8 values have them)")
        if self.scale is not None and tuple(self.scale.shape) != (self.layout.shape[0],):
            raise FormatError(f"scale shape {tuple(self.scale.shape)} != ({self.layout.shape[0]},)")
        if self.scale is not None and not bool((torch.isfinite(self.scale) & (self.scale > 0)).all()):
            bad = int((~(torch.isfinite(self.scale) & (self.scale > 0))).sum())
            raise FormatError(f"{bad} FP8 scales are non-finite or not positive; the checkpoint is damaged")
        if R and G:
            i0, i1 = _decode_meta(self.meta, G)
            bad = int((i0 >= i1).sum())
            if bad:
                raise FormatError(
                    f"metadata: {bad} groups have in-group indices out of order or equal (need i0 < i1)"
                )
            if G % 2 and bool(((self.meta[:, -1] >> 4) != _META_PAD).any()):
                raise FormatError("metadata padding nibble must be 0x4")


def _is_fp8(dt: torch.dtype) -> bool:
    return "float8" in str(dt)


def _decode_meta(meta: torch.Tensor, G: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(i0, i1)`` int64 of shape ``(R, G)`` from packed uint8 metadata."""
    m = meta.to(torch.int64)
    nib = torch.stack([m & 0xF, m >> 4], dim=-1).reshape(m.shape[0], -1)[:, :G]
    return nib & 0x3, (nib >> 2) & 0x3


def compress_24(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, meta)`` of a 2:4 matrix ``s`` ``(R, Ks)`` (see the packed-storage notes above)."""
    R, Ks = s.shape
    if Ks % 4:
        raise FormatError(f"sparse region width {Ks} is not a multiple of 4")
    G = Ks // 4
    if R == 0 or G == 0:
        return (torch.zeros(R, Ks // 2, dtype=s.dtype, device=s.device),
                torch.zeros(R, (G + 1) // 2, dtype=torch.uint8, device=s.device))
    g = s.reshape(R, G, 4)
    nz = g != 0
    if bool((nz.sum(-1) > 2).any()):
        bad = int((nz.sum(-1) > 2).sum())
        raise FormatError(f"sparse region breaks 2:4: {bad} groups of 4 have more than 2 nonzeros")
    pos = torch.arange(4, device=s.device)
    key = (~nz).to(torch.int64) * 4 + pos  # nonzeros first, then lowest positions
    idx = key.argsort(dim=-1, stable=True)[..., :2].sort(dim=-1).values  # (R, G, 2), i0 < i1
    vals = g.gather(-1, idx).reshape(R, Ks // 2)
    nib = (idx[..., 0] | (idx[..., 1] << 2)).to(torch.uint8)  # (R, G)
    if G % 2:
        nib = torch.cat([nib, torch.full((R, 1), _META_PAD, dtype=torch.uint8, device=s.device)], 1)
    nib = nib.reshape(R, nib.shape[1] // 2, 2)
    meta = (nib[..., 0] | (nib[..., 1] << 4)).contiguous()
    return vals.contiguous(), meta


def decompress_24(values: torch.Tensor, meta: torch.Tensor, Ks: int) -> torch.Tensor:
    """Inverse of :func:`compress_24`: the ``(R, Ks)`` matrix with zeros (in ``values.dtype``)."""
    R = values.shape[0]
    G = Ks // 4
    out = torch.zeros(R, G, 4, dtype=values.dtype, device=values.device)
    if R == 0 or G == 0:
        return out.reshape(R, Ks)
    i0, i1 = _decode_meta(meta, G)
    v = values.reshape(R, G, 2)
    out.scatter_(-1, i0.unsqueeze(-1), v[..., :1])
    out.scatter_(-1, i1.unsqueeze(-1), v[..., 1:])
    return out.reshape(R, Ks)


FP8_MAX = 448.0


def pack(w: torch.Tensor, layout: SpenseLayout, fp8: bool = False) -> PackedSpense:
    """Pack a dense-with-zeros Spense weight ``w`` ``(N, K)`` into :class:`PackedSpense`.

    Lossless (``unpack(pack(w, lay)) == w`` exactly, same dtype).  With ``fp8=True`` the weight is
    quantised to float8_e4m3fn with one float32 scale per output channel (``amax / 448``) — lossy.
    """
    layout.validate()
    layout._check_shape(w)
    if layout.n != 2 or layout.m != 4:
        raise FormatError(f"packed storage supports 2:4 only, got {layout.n}:{layout.m}")
    scale = None
    if fp8:
        wf = w.float()
        amax = wf.abs().amax(dim=1).clamp_min(1e-12)
        scale = (amax / FP8_MAX).float()
        w = (wf / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
        # fp8 zeros stay zeros, so the 2:4 structure is preserved
    s, d = layout.split(w.float() if fp8 else w)
    if fp8:
        s, d = s.to(torch.float8_e4m3fn), d.to(torch.float8_e4m3fn)
    vals, meta = compress_24(s.float() if fp8 else s)
    if fp8:
        vals = vals.to(torch.float8_e4m3fn)
    p = PackedSpense(layout, vals, meta, d.contiguous(), scale)
    return p


def unpack(p: PackedSpense, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The dense-with-zeros ``(N, K)`` weight of ``p`` (dequantised to ``dtype`` for FP8)."""
    R, Ks = p.sparse_shape
    fp8 = p.scale is not None
    vals = p.values.float() if fp8 else p.values
    s = decompress_24(vals, p.meta, Ks)
    d = p.dense.float() if fp8 else p.dense
    w = p.layout.merge(s, d)
    if fp8:
        w = w * p.scale.to(w.device)[:, None]
        return w.to(dtype or torch.bfloat16)
    return w if dtype is None else w.to(dtype)


def check_fp8_weights(wq: torch.Tensor, scale: torch.Tensor | None, name: str = "weight",
                      n_out: int | None = None) -> None:
    """Refuse FP8 weights whose scales are missing, misshaped (``(n_out,)``, default ``wq.shape[0]``),
    non-finite or not positive (FormatError)."""
    if wq.dtype != torch.float8_e4m3fn:
        raise FormatError(f"{name}: FP8 weights must be {torch.float8_e4m3fn}, got {wq.dtype}")
    if scale is None:
        raise FormatError(f"{name}: FP8 weights without per-channel scales")
    n = wq.shape[0] if n_out is None else int(n_out)
    if tuple(scale.shape) != (n,):
        raise FormatError(f"{name}: FP8 scale shape {tuple(scale.shape)} != ({n},)")
    s = scale.detach().float()
    if not bool(torch.isfinite(s).all()):
        raise FormatError(f"{name}: FP8 scales contain {int((~torch.isfinite(s)).sum())} non-finite values")
    if bool((s <= 0).any()):
        raise FormatError(f"{name}: FP8 scales must be > 0 ({int((s <= 0).sum())} are not)")
