"""``--dense-layers SPEC``: which whole linears stay dense.

SPEC is a comma-separated list of items:

* a decoder-layer index or an inclusive range, ``3`` or ``0-6``: every prunable linear of those layers;
* a module name or a dotted suffix of one, ``down_proj``, ``mlp.down_proj``,
  ``model.layers.3.self_attn.q_proj``: every linear whose full name is it or ends in ``.ITEM``;
* ``auto:FRACTION`` (``0 < FRACTION < 1``): further whole linears, worth ``FRACTION`` of the weights of
  all prunable linears, chosen by measured sensitivity among the linears not named otherwise.

:func:`parse_spec` checks SPEC against the model's linears before any work and returns the named
linears (in model order) followed, for ``auto``, by the marker ``"auto:FRACTION"``; the pipeline
measures the curves (:func:`spense.sensitivity.measure_curves`) and calls :func:`resolve_auto`, which
picks the rest with :func:`spense.allocate.whole_layers` — loss saved per dense weight, greedily.

Errors (:class:`InputError`, one line): an empty SPEC or item, bad syntax, an item that matches no
linear, a linear named by two items, a layer index past the last layer, two ``auto`` items, an
``auto`` fraction outside ``(0, 1)``, and named linears plus the ``auto`` share above the whole model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from spense.allocate import DENSE, Curve, budget_from_share, whole_layers
from spense.errors import InputError

AUTO = "auto:"
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$")


def layer_index(name: str) -> int | None:
    """The decoder-layer index in a full linear name: its first all-digit component
    (``model.layers.3.mlp.down_proj`` → 3), ``None`` if there is none."""
    for part in name.split("."):
        if part.isdigit():
            return int(part)
    return None


def _fraction(item: str) -> float:
    text = item[len(AUTO):].strip()
    try:
        f = float(text)
    except ValueError:
        raise InputError(f"--dense-layers: {item!r}: auto needs a fraction, e.g. auto:0.25") from None
    if not (math.isfinite(f) and 0.0 < f < 1.0):
        raise InputError(f"--dense-layers: {item!r}: the auto fraction must be in (0, 1), got {text}")
    return f


def _matches(item: str, names: list[str], layers: dict[str, int | None], n_layers: int) -> list[str]:
    m = _RANGE.match(item)
    if m:
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise InputError(f"--dense-layers: {item!r}: a range goes low-high, e.g. {hi}-{lo}")
        if hi >= n_layers:
            raise InputError(f"--dense-layers: {item!r}: layer {hi} is past the last layer "
                             f"(the model has {n_layers} decoder layers, 0-{n_layers - 1})")
        return [n for n in names if layers[n] is not None and lo <= layers[n] <= hi]
    if _NAME.match(item):
        return [n for n in names if n == item or n.endswith("." + item)]
    raise InputError(f"--dense-layers: bad item {item!r} (use layer ranges like 0-6, module names like "
                     f"down_proj, or auto:FRACTION)")


def parse_spec(spec: str, linear_names: list[str], weight_numels: Mapping[str, int]) -> list[str]:
    """The linears SPEC keeps dense (model order), then ``"auto:F"`` if SPEC has an auto item.

    ``linear_names``: full names of the model's prunable linears; ``weight_numels``: ``N·K`` of each.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("--dense-layers: empty SPEC (use e.g. 0-6, down_proj or auto:0.25)")
    names = list(linear_names)
    missing = [n for n in names if n not in weight_numels]
    if missing:
        raise InputError(f"--dense-layers: no weight size for {missing[0]!r}")
    layers = {n: layer_index(n) for n in names}
    known = [i for i in layers.values() if i is not None]
    n_layers = max(known) + 1 if known else 0
    owner: dict[str, str] = {}
    fraction: float | None = None
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            raise InputError(f"--dense-layers: empty item in {spec!r}")
        if item.startswith(AUTO) or item == "auto":
            if fraction is not None:
                raise InputError(f"--dense-layers: auto given twice in {spec!r}")
            fraction = _fraction(item if item != "auto" else AUTO)
            continue
        hit = _matches(item, names, layers, n_layers)
        if not hit:
            raise InputError(f"--dense-layers: {item!r} matches no prunable linear")
        for n in hit:
            if n in owner:
                raise InputError(f"--dense-layers: {n} is named twice (by {owner[n]!r} and {item!r})")
            owner[n] = item
    total = sum(int(weight_numels[n]) for n in names)
    named = sum(int(weight_numels[n]) for n in owner)
    if fraction is not None and total and named + fraction * total > total * (1 + 1e-9):
        raise InputError(f"--dense-layers: {spec!r} asks for more than the whole model (named linears "
                         f"hold {named / total:.3f} of the weights, plus auto {fraction:g})")
    if fraction is not None and named == total:
        raise InputError(f"--dense-layers: {spec!r} leaves no linear for auto to choose")
    out = [n for n in names if n in owner]
    return out + ([f"{AUTO}{fraction!r}"] if fraction is not None else [])


def split_auto(selected: Iterable[str]) -> tuple[list[str], float | None]:
    """``(named linears, auto fraction or None)`` from :func:`parse_spec`'s result."""
    names, fraction = [], None
    for s in selected:
        if s.startswith(AUTO):
            fraction = float(s[len(AUTO):])
        else:
            names.append(s)
    return names, fraction


def resolve_auto(selected: Iterable[str], curves: Mapping[str, Curve]) -> list[str]:
    """The final dense linears: the named ones plus, for ``auto:F``, whole linears worth ``F`` of all
    the linears' weights, chosen among the others by :func:`spense.allocate.whole_layers` on their
    measured ``curves`` (keyed by full name; every linear needs one with choices 2:4 and dense).
    Returned in the order of ``curves``."""
    names, fraction = split_auto(selected)
    if fraction is None:
        return names
    fixed = set(names)
    unknown = fixed - set(curves)
    if unknown:
        raise InputError(f"--dense-layers: no sensitivity curve for {min(unknown)!r}")
    budget = budget_from_share(curves.values(), fraction)
    free = [c for n, c in curves.items() if n not in fixed]
    alloc = whole_layers(free, budget)
    chosen = {n for n, c in alloc.choice.items() if c == DENSE}
    return [n for n in curves if n in fixed or n in chosen]
