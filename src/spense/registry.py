"""The one vocabulary of pruning methods, dense-region strategies and saliences.

Every name a user can type (CLI choices), every check of a :class:`~spense.methods.PruneConfig`
(:func:`validate_config`) and the per-layer manifest fields (:func:`record_fields`) come from the
tables below; nothing else lists them.

A method's *typed config* is the subset of ``PruneConfig`` fields it reads (``MethodSpec.fields``);
a strategy's is ``StrategySpec.fields``.  :func:`method_config` returns exactly those, for the
manifest.

=============  ===========================================================================
method         dense region                   weight update
=============  ===========================================================================
dense          everything (weight kept)       none
magnitude      none (``dense_ratio`` = 0)     none, N:M mask on ``|W|``
wanda          none (``dense_ratio`` = 0)     none, N:M mask on ``|W| · sqrt(diag H)``
sparsegpt      none (``dense_ratio`` = 0)     OBS sweep, N:M
unstructured   recorded all-dense             OBS sweep, unstructured at spense's density
spense         ``dense_ratio`` of rows/cols   OBS sweep, N:M outside the dense region
=============  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from spense.errors import InputError

AXES = ("rows", "cols")
_NM = ("n", "m")
_OBS = ("blocksize", "percdamp")


@dataclass(frozen=True)
class MethodSpec:
    """One pruning method: its CLI help, the config fields it reads and how its layers are recorded."""

    name: str
    help: str
    fields: tuple[str, ...]  # PruneConfig fields the method reads (its typed config)
    default_dense_ratio: float  # CLI default of --dense-ratio
    fixed_dense_ratio: float | None = None  # the only allowed dense_ratio (None: any in [0, 1])
    region: bool = False  # chooses a dense region with a strategy
    all_dense_record: bool = False  # recorded as an all-dense layout (no N:M region)


@dataclass(frozen=True)
class StrategySpec:
    """One dense-region strategy: the axis it implies (None: ``--axis``, default cols)."""

    name: str
    help: str
    implied_axis: str | None
    fields: tuple[str, ...]


METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        MethodSpec("spense", "2:4 + dense region placed by the allocator or --strategy",
                   ("dense_ratio", "strategy", "block") + _NM + _OBS,
                   0.25, region=True),
        MethodSpec("sparsegpt", "OBS sweep, pure 2:4", _NM + _OBS, 0.0, fixed_dense_ratio=0.0),
        MethodSpec("wanda", "2:4 mask on |W|·‖X_j‖, no update", _NM, 0.0, fixed_dense_ratio=0.0),
        MethodSpec("magnitude", "2:4 mask on |W|, no update", _NM, 0.0, fixed_dense_ratio=0.0),
        MethodSpec("unstructured", "OBS sweep, unstructured at the density of --dense-ratio",
                   ("dense_ratio",) + _NM + _OBS, 0.25, all_dense_record=True),
        MethodSpec("dense", "weight kept as is (all-dense layout)", (), 0.0, all_dense_record=True),
    )
}

STRATEGIES: dict[str, StrategySpec] = {
    s.name: s
    for s in (
        StrategySpec("loss-rows", "rows with the largest trial 2:4 loss", "rows", ()),
        StrategySpec("salience-cols", "columns of largest salience, swept last", "cols",
                     ("salience", "col_blocks", "tie_cols")),
        StrategySpec("random", "seeded random rows/cols (ablation)", None, ("axis", "seed", "col_blocks")),
        StrategySpec("first", "the first rows/cols (ablation)", None, ("axis",)),
    )
}

#: salience-cols rankings: "obs-col" (‖W[:,j]‖²/[H⁻¹]_jj), "act" (diag(H)·‖W[:,j]‖²), "obs" (trial pass)
SALIENCES = ("obs-col", "act", "obs")

#: what the sequential option of the pipeline may be
SEQUENTIAL = ("true", "block")


def _enum(name: str, values) -> type[Enum]:
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


#: ``str`` enums for typer options, generated from the tables above
MethodChoice = _enum("MethodChoice", METHODS)
StrategyChoice = _enum("StrategyChoice", STRATEGIES)
SalienceChoice = _enum("SalienceChoice", SALIENCES)
AxisChoice = _enum("AxisChoice", AXES)
SequentialChoice = _enum("SequentialChoice", SEQUENTIAL)


def _choose(kind: str, value: Any, names) -> str:
    if value not in names:
        raise InputError(f"unknown {kind} {value!r}; choose one of {', '.join(names)}")
    return value


def method_spec(name: str) -> MethodSpec:
    return METHODS[_choose("method", name, METHODS)]


def strategy_spec(name: str) -> StrategySpec:
    return STRATEGIES[_choose("dense strategy", name, STRATEGIES)]


def strategy_axis(strategy: str, axis: str | None = None) -> str:
    """Axis of a strategy: implied for ``loss-rows``/``salience-cols``, ``axis or "cols"`` otherwise."""
    spec = strategy_spec(strategy)
    if axis is not None and axis not in AXES:
        raise InputError(f"axis must be 'rows' or 'cols', got {axis!r}")
    if spec.implied_axis is not None:
        if axis is not None and axis != spec.implied_axis:
            raise InputError(f"strategy {strategy!r} works on {spec.implied_axis}, not {axis}")
        return spec.implied_axis
    return axis or "cols"


def check_sequential(value: str) -> str:
    return _choose("sequential mode", value, SEQUENTIAL)


def default_dense_ratio(method: str) -> float:
    """The ``--dense-ratio`` a method gets when the user gives none."""
    return method_spec(method).default_dense_ratio


def validate_config(cfg: Any) -> None:
    """Check the registry-level choices of a PruneConfig (names, dense ratio rules, axis, col_blocks).

    Raises :class:`InputError` with a one-line message naming the bad value.
    """
    spec = method_spec(cfg.method)
    strategy_spec(cfg.strategy)
    _choose("salience", cfg.salience, SALIENCES)
    if cfg.axis is not None and cfg.axis not in AXES:
        raise InputError(f"axis must be one of {', '.join(AXES)} (or unset), got {cfg.axis!r}")
    try:
        r = float(cfg.dense_ratio)
    except (TypeError, ValueError):
        raise InputError(f"dense ratio must be a number in [0, 1], got {cfg.dense_ratio!r}") from None
    if not 0.0 <= r <= 1.0:
        raise InputError(f"dense ratio must be in [0, 1], got {cfg.dense_ratio}")
    if spec.fixed_dense_ratio is not None and r != spec.fixed_dense_ratio:
        raise InputError(
            f"method {spec.name!r} has no dense region: dense_ratio must be {spec.fixed_dense_ratio:g} "
            f"(got {cfg.dense_ratio}); use method 'spense' for a dense region"
        )
    if spec.region:
        ax = strategy_axis(cfg.strategy, cfg.axis)
        if cfg.col_blocks and ax != "cols":
            raise InputError(f"col_blocks (--col-blocks) shapes a column dense region; strategy "
                             f"{cfg.strategy!r} keeps rows")
    elif cfg.col_blocks:
        raise InputError(f"col_blocks (--col-blocks) needs method 'spense'; {cfg.method!r} has no dense region")
    if getattr(cfg, "tie_cols", False) and not (spec.region and cfg.strategy == "salience-cols"
                                                and cfg.salience != "obs"):
        raise InputError("tie_cols (--tie-cols) needs method 'spense' with strategy 'salience-cols' and "
                         "salience 'obs-col' or 'act'")


def method_config(cfg: Any) -> dict[str, Any]:
    """The typed config of ``cfg``'s method (and strategy): only the fields they read."""
    spec = method_spec(cfg.method)
    names = list(spec.fields)
    if spec.region:
        names += [f for f in strategy_spec(cfg.strategy).fields if f not in names]
    return {"method": cfg.method, **{f: getattr(cfg, f) for f in names}}


def record_fields(cfg: Any) -> dict[str, Any]:
    """The per-layer manifest fields that name the method: ``method`` and ``strategy`` (None unless the
    method chooses a dense region)."""
    spec = method_spec(cfg.method)
    return {"method": cfg.method, "strategy": cfg.strategy if spec.region else None}
