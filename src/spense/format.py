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
    """Nonzero count of every aligned group of ``m`` consecutive entries along the last dim."""
    if w.shape[-1] % m:
        raise FormatError(f"last dimension {w.shape[-1]} is not a multiple of {m}")
    return (w != 0).reshape(*w.shape[:-1], w.shape[-1] // m, m).sum(-1)


def is_nm(w: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every aligned group of ``m`` along the last dim has at most ``n`` nonzeros."""
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
        N, K = self.shape
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
        try:
            lay = cls(
                shape=tuple(d["shape"]),
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
    """Measured fraction of nonzero entries of ``w``."""
    return float((w != 0).sum()) / max(1, w.numel())
