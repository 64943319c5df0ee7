"""Dense-budget allocation across linears: a multiple-choice knapsack over measured loss curves.

Every prunable linear ``l`` has candidate choices ``c ∈ C_l`` (:class:`Choice`: dense share 0 = pure
2:4, a share of its rows or of its columns, 1 = the whole linear dense), a measured loss ``L_l(c)``
and a cost ``b_l(c)`` (dense weights; see :func:`choice_cost`).  For a global budget ``B``::

    minimize  Σ_l L_l(c_l)   subject to   Σ_l b_l(c_l) ≤ B,   c_l ∈ C_l.

Costs are counted in dense weights.  Bytes are affine in them: a weight moved from the 2:4 region to
the dense region adds ``e·(1 - n/m)`` bytes less its share of the 2:4 metadata (``e`` = bytes per
element), the same for every linear of one dtype, so a byte budget is a dense-weight budget.  The
"dense share of the block linears" ``s`` is ``B = s · Σ_l N_l K_l`` (:func:`budget_from_share`).

**Greedy on the lower convex hull** (the LP relaxation of the multiple-choice knapsack, Sinha &
Zoltners 1979):

1. per linear, keep the lower convex hull ``h_0, h_1, …`` of its points ``(b, L)`` (cost strictly
   increasing, loss strictly decreasing, start = the cheapest point of lowest loss); the upgrade
   ``h_{k-1} → h_k`` has efficiency (loss saved per extra dense weight)::

       e_k = (L(h_{k-1}) - L(h_k)) / (b(h_k) - b(h_{k-1})),   non-increasing in k (convexity);

2. start every linear at ``h_0``; take the upgrades of all linears in order of decreasing ``e_k``
   (ties: the order of the curves), each one if it fits the remaining budget; once an upgrade of a
   linear does not fit, that linear stays where it is.

Guarantee: with ``L_LP`` the LP optimum, ``L_LP ≤ L_opt ≤ L_greedy ≤ L_LP + Δ``, where ``Δ`` is the
loss drop of the one upgrade the LP takes fractionally; so the greedy is within one upgrade's loss
drop of the optimum, and exactly optimal when the budget lands on a breakpoint (the cost of a prefix
of the sorted upgrades).  Choices above a linear's hull are never picked.

The study's simpler policies are the same function with fewer choices (``allowed``): uniform regions
(:func:`uniform`: one choice for every linear), whole linears only (:func:`whole_layers`: 0 or 1), one
axis or both (:func:`choices_for_axes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from spense.errors import InputError
from spense.format import AXES, DEFAULT_BLOCK, dense_count
from spense.methods import PruneConfig
from spense.registry import METHODS

DEFAULT_SHARES = (0.1, 0.25, 0.5)
AXES_MODES = ("rows", "cols", "mixed")


@dataclass(frozen=True)
class Choice:
    """One candidate for a linear: ``share`` of its rows (``axis="rows"``) or columns (``"cols"``)
    kept dense; ``share`` 0 = pure 2:4 and 1 = the whole linear dense take no axis."""

    share: float
    axis: str | None = None

    def __post_init__(self) -> None:
        s = float(self.share)
        if not 0.0 <= s <= 1.0:
            raise InputError(f"dense share must be in [0, 1], got {self.share}")
        object.__setattr__(self, "share", s)
        if s in (0.0, 1.0):
            if self.axis is not None:
                object.__setattr__(self, "axis", None)
        elif self.axis not in AXES:
            raise InputError(f"a dense share of {s:g} needs an axis (rows or cols), got {self.axis!r}")

    @property
    def whole(self) -> bool:
        return self.share == 1.0

    def __str__(self) -> str:
        if self.share == 0.0:
            return "2:4"
        if self.share == 1.0:
            return "dense"
        return f"{self.axis}:{self.share:g}"


SPARSE = Choice(0.0)
DENSE = Choice(1.0)


def parse_choice(text: str) -> Choice:
    """Inverse of ``str(Choice)``: ``"2:4"``, ``"dense"``, ``"rows:0.25"``, ``"cols:0.1"``."""
    t = str(text).strip()
    if t == "2:4":
        return SPARSE
    if t == "dense":
        return DENSE
    axis, _, share = t.partition(":")
    try:
        return Choice(float(share), axis)
    except ValueError:
        raise InputError(f"bad dense choice {text!r} (use 2:4, dense, rows:SHARE or cols:SHARE)") from None


def choices_for_axes(axes: str = "mixed", shares: Iterable[float] = DEFAULT_SHARES,
                     whole: bool = True, sparse: bool = True) -> tuple[Choice, ...]:
    """Candidate choices: pure 2:4, each share on ``rows``, ``cols`` or both (``mixed``), whole dense."""
    if axes not in AXES_MODES:
        raise InputError(f"axes must be one of {', '.join(AXES_MODES)}, got {axes!r}")
    out = [SPARSE] if sparse else []
    for ax in (AXES if axes == "mixed" else (axes,)):
        out += [Choice(s, ax) for s in shares if 0.0 < float(s) < 1.0]
    return tuple(out + ([DENSE] if whole else []))


def choice_cost(shape: tuple[int, int], choice: Choice, block: int = DEFAULT_BLOCK) -> int:
    """Dense weights of ``choice`` on an ``(N, K)`` weight: ``d · K`` for rows, ``N · d`` for cols,
    ``d = dense_count(dim, share, block)`` (the count the pruner really keeps); ``N · K`` for whole."""
    N, K = int(shape[0]), int(shape[1])
    if choice.share == 0.0:
        return 0
    if choice.whole:
        return N * K
    if choice.axis == "rows":
        return dense_count(N, choice.share, block) * K
    return N * dense_count(K, choice.share, block)


@dataclass(frozen=True)
class Curve:
    """Measured ``L_l(c)`` and ``b_l(c)`` of one linear (parallel tuples), ``numel = N·K``."""

    name: str
    numel: int
    choices: tuple[Choice, ...]
    loss: tuple[float, ...]
    cost: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.choices or not len(self.choices) == len(self.loss) == len(self.cost):
            raise InputError(f"curve {self.name!r}: choices, losses and costs must be non-empty and of equal length")
        for L, b in zip(self.loss, self.cost):
            if not (math.isfinite(L) and math.isfinite(b)) or b < 0:
                raise InputError(f"curve {self.name!r}: losses/costs must be finite and costs >= 0")

    def at(self, choice: Choice) -> tuple[float, float]:
        """``(loss, cost)`` of ``choice``."""
        i = self.choices.index(choice)
        return self.loss[i], self.cost[i]


@dataclass
class Allocation:
    """One choice per linear, with the total loss ``Σ L_l(c_l)`` and cost ``Σ b_l(c_l)``."""

    choice: dict[str, Choice]
    loss: float
    cost: float
    budget: float
    upgrades: list[tuple[str, float]] = field(default_factory=list)  # (name, efficiency) taken, in order

    def share(self, curves: Iterable[Curve]) -> float:
        """Dense share of the linears: ``cost / Σ numel``."""
        total = sum(c.numel for c in curves)
        return self.cost / total if total else 0.0


Allowed = Callable[[Choice], bool] | Iterable[Choice] | None


def _allowed_fn(allowed: Allowed) -> Callable[[Choice], bool]:
    if allowed is None:
        return lambda c: True
    if callable(allowed):
        return allowed
    keep = set(allowed)
    return lambda c: c in keep


def lower_hull(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Lower convex hull of ``(cost, loss, index)`` points, cost strictly up and loss strictly down.

    Sort by ``(cost, loss)``, drop points that do not lower the loss, then pop the middle point ``p1``
    of any ``p0, p1, p2`` whose slopes are not increasing: ``(L1-L0)(b2-b1) ≥ (L2-L1)(b1-b0)``.
    """
    pts = sorted(points, key=lambda p: (p[0], p[1], p[2]))
    hull: list[tuple[float, float, int]] = []
    for p in pts:
        if hull and p[1] >= hull[-1][1]:
            continue  # same or higher loss at no lower cost: dominated
        while len(hull) >= 2:
            (b0, L0, _), (b1, L1, _) = hull[-2], hull[-1]
            if (L1 - L0) * (p[0] - b1) >= (p[1] - L1) * (b1 - b0):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def allocate(curves: Iterable[Curve], budget: float, allowed: Allowed = None) -> Allocation:
    """Greedy multiple-choice knapsack on the lower convex hulls (module doc); ``allowed`` restricts
    the choices (a predicate or a collection of :class:`Choice`).

    Raises :class:`InputError` when a linear has no allowed choice, or when even the cheapest allowed
    choices cost more than ``budget``.
    """
    curves = list(curves)
    ok = _allowed_fn(allowed)
    pos: dict[str, int] = {}
    hulls: list[list[tuple[float, float, int]]] = []
    for ci, cv in enumerate(curves):
        if cv.name in pos:
            raise InputError(f"linear {cv.name!r} has two curves")
        pos[cv.name] = ci
        pts = [(float(b), float(L), i) for i, (c, L, b) in enumerate(zip(cv.choices, cv.loss, cv.cost)) if ok(c)]
        if not pts:
            raise InputError(f"linear {cv.name!r} has none of the allowed dense choices")
        hulls.append(lower_hull(pts))
    at = [0] * len(curves)
    spent = sum(h[0][0] for h in hulls)
    if spent > budget * (1 + 1e-12) + 1e-9:
        raise InputError(f"dense budget {budget:g} is below the cheapest allowed allocation ({spent:g})")
    ups = []  # (-efficiency, curve index, hull step k)
    for ci, h in enumerate(hulls):
        for k in range(1, len(h)):
            ups.append((-(h[k - 1][1] - h[k][1]) / (h[k][0] - h[k - 1][0]), ci, k))
    ups.sort()
    stuck: set[int] = set()
    taken: list[tuple[str, float]] = []
    for neg_e, ci, k in ups:
        if ci in stuck or at[ci] != k - 1:
            continue
        extra = hulls[ci][k][0] - hulls[ci][k - 1][0]
        if spent + extra > budget * (1 + 1e-12) + 1e-9:
            stuck.add(ci)
            continue
        spent += extra
        at[ci] = k
        taken.append((curves[ci].name, -neg_e))
    choice = {cv.name: cv.choices[hulls[ci][at[ci]][2]] for ci, cv in enumerate(curves)}
    loss = sum(hulls[ci][at[ci]][1] for ci in range(len(curves)))
    return Allocation(choice, loss, spent, float(budget), taken)


def evaluate(curves: Iterable[Curve], choice: Mapping[str, Choice]) -> tuple[float, float]:
    """``(Σ L_l(c_l), Σ b_l(c_l))`` of a given assignment."""
    loss = cost = 0.0
    for cv in curves:
        L, b = cv.at(choice[cv.name])
        loss, cost = loss + L, cost + b
    return loss, cost


def budget_from_share(curves: Iterable[Curve], share: float) -> float:
    """``B = share · Σ_l numel_l`` (dense weights) for a dense share of the linears in ``[0, 1]``."""
    if not 0.0 <= float(share) <= 1.0:
        raise InputError(f"dense budget share must be in [0, 1], got {share}")
    return float(share) * sum(c.numel for c in curves)


def uniform(curves: Iterable[Curve], choice: Choice, budget: float = math.inf) -> Allocation:
    """Every linear gets ``choice`` (``allocate`` with that one choice allowed)."""
    return allocate(curves, budget, allowed=(choice,))


def whole_layers(curves: Iterable[Curve], budget: float) -> Allocation:
    """Whole linears dense or pure 2:4 only (``allocate`` with choices ``{0, 1}``), greedily by loss
    saved per dense weight."""
    return allocate(curves, budget, allowed=(SPARSE, DENSE))


def allowed_for(axes: str = "mixed", whole: bool = True) -> Callable[[Choice], bool]:
    """Predicate for ``allocate``: choices on ``axes`` (rows, cols or mixed), with or without whole."""
    if axes not in AXES_MODES:
        raise InputError(f"axes must be one of {', '.join(AXES_MODES)}, got {axes!r}")
    return lambda c: (c.share == 0.0 or (c.whole and whole)
                      or (0.0 < c.share < 1.0 and (axes == "mixed" or c.axis == axes)))


def choice_config(choice: Choice, base: PruneConfig) -> PruneConfig:
    """The per-linear :class:`~spense.methods.PruneConfig` that realises ``choice`` (other fields
    from ``base``): share 0 → ``base.method`` if it has no dense region (sparsegpt, wanda,
    magnitude), else ``sparsegpt``; rows → ``spense`` + ``loss-rows``; cols → ``spense`` +
    ``salience-cols``; 1 → ``dense`` (weight kept, all-dense layout)."""
    if choice.share == 0.0:
        spec = METHODS.get(base.method)
        no_region = spec is not None and spec.fixed_dense_ratio == 0.0
        return replace(base, method=base.method if no_region else "sparsegpt", dense_ratio=0.0,
                       axis=None, col_blocks=False, tie_cols=False)
    if choice.whole:
        return replace(base, method="dense", dense_ratio=1.0, axis=None, col_blocks=False, tie_cols=False)
    strategy = "loss-rows" if choice.axis == "rows" else "salience-cols"
    return replace(base, method="spense", dense_ratio=choice.share, strategy=strategy, axis=None,
                   col_blocks=base.col_blocks and choice.axis == "cols",
                   tie_cols=base.tie_cols and choice.axis == "cols")


def plan_from_allocation(choice: Mapping[str, Choice], base: PruneConfig) -> dict[str, PruneConfig]:
    """``{full linear name: PruneConfig}`` for ``pipeline.prune_model(plan=...)`` (see
    :func:`choice_config`); every config is validated here, before any pruning."""
    plan = {name: choice_config(c, base) for name, c in choice.items()}
    for cfg in plan.values():
        cfg.validate()
    return plan
