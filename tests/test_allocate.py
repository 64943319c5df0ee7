"""The dense-budget allocator: greedy on the lower convex hull against brute force."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from spense.allocate import (
    DENSE,
    SPARSE,
    Choice,
    Curve,
    allocate,
    allowed_for,
    budget_from_share,
    choice_config,
    choice_cost,
    choices_for_axes,
    evaluate,
    lower_hull,
    parse_choice,
    plan_from_allocation,
    uniform,
    whole_layers,
)
from spense.errors import InputError
from spense.format import dense_count
from spense.methods import PruneConfig

CHOICES = (SPARSE, Choice(0.25, "rows"), Choice(0.5, "cols"), DENSE)


def _random_curve(rng: random.Random, name: str, convex: bool = False) -> Curve:
    k = len(CHOICES)
    numel = rng.randint(50, 200)
    cost = sorted(rng.sample(range(1, numel), k - 2))
    cost = [0.0] + [float(c) for c in cost] + [float(numel)]
    if convex:  # strictly decreasing, strictly convex: slopes strictly increasing toward 0
        slopes = sorted(-rng.uniform(0.01, 1.0) for _ in range(k - 1))
        loss = [rng.uniform(200, 300)]
        for s, (b0, b1) in zip(slopes, itertools.pairwise(cost)):
            loss.append(loss[-1] + s * (b1 - b0))
        loss = [L - loss[-1] for L in loss]  # whole dense = 0
    else:
        loss = sorted((rng.uniform(0, 100) for _ in range(k - 1)), reverse=True) + [0.0]
        if rng.random() < 0.5:  # sometimes a choice that does not help at all
            i = rng.randrange(1, k - 1)
            loss[i] = loss[i - 1] + rng.uniform(0, 5)
    return Curve(name, numel, CHOICES, tuple(loss), tuple(cost))


def _brute(curves: list[Curve], budget: float) -> float:
    best = math.inf
    for combo in itertools.product(*(range(len(c.choices)) for c in curves)):
        cost = sum(c.cost[i] for c, i in zip(curves, combo))
        if cost <= budget:
            best = min(best, sum(c.loss[i] for c, i in zip(curves, combo)))
    return best


def _max_step(curves: list[Curve]) -> float:
    """Largest loss drop of one hull upgrade: the greedy's gap bound."""
    out = 0.0
    for c in curves:
        h = lower_hull([(b, L, i) for i, (L, b) in enumerate(zip(c.loss, c.cost))])
        out = max([out] + [h[k - 1][1] - h[k][1] for k in range(1, len(h))])
    return out


@pytest.mark.parametrize("seed", range(30))
def test_greedy_within_one_upgrade_of_brute_force(seed):
    rng = random.Random(seed)
    curves = [_random_curve(rng, f"l{i}") for i in range(rng.randint(2, 5))]
    total = sum(c.numel for c in curves)
    budget = rng.uniform(0.05, 0.9) * total
    a = allocate(curves, budget)
    opt = _brute(curves, budget)
    loss, cost = evaluate(curves, a.choice)
    assert cost <= budget + 1e-9 and math.isclose(cost, a.cost) and math.isclose(loss, a.loss)
    assert opt - 1e-9 <= loss <= opt + _max_step(curves) + 1e-9


@pytest.mark.parametrize("seed", range(20))
def test_greedy_is_optimal_at_breakpoints_of_convex_curves(seed):
    rng = random.Random(100 + seed)
    curves = [_random_curve(rng, f"l{i}", convex=True) for i in range(rng.randint(2, 4))]
    ups = []
    for c in curves:
        for k in range(1, len(c.cost)):
            ups.append(((c.loss[k - 1] - c.loss[k]) / (c.cost[k] - c.cost[k - 1]), c.cost[k] - c.cost[k - 1]))
    ups.sort(key=lambda u: -u[0])
    for n in range(len(ups) + 1):
        budget = float(sum(u[1] for u in ups[:n]))
        a = allocate(curves, budget)
        assert a.loss == pytest.approx(_brute(curves, budget), rel=1e-9, abs=1e-9)
        assert a.cost == pytest.approx(budget)


def test_hull_skips_points_above_it():
    # choice 1 lies above the chord from 0 to 2: never picked, even when it alone would fit
    c = Curve("a", 100, CHOICES[:3], (10.0, 9.5, 0.0), (0.0, 10.0, 20.0))
    assert [p[2] for p in lower_hull([(b, L, i) for i, (L, b) in enumerate(zip(c.loss, c.cost))])] == [0, 2]
    assert allocate([c], 15.0).choice["a"] == SPARSE
    assert allocate([c], 20.0).choice["a"] == CHOICES[2]


def test_greedy_takes_best_loss_per_weight_first():
    a = Curve("a", 100, (SPARSE, DENSE), (10.0, 0.0), (0.0, 100.0))  # 0.1 per weight
    b = Curve("b", 100, (SPARSE, DENSE), (30.0, 0.0), (0.0, 100.0))  # 0.3 per weight
    c = Curve("c", 50, (SPARSE, DENSE), (10.0, 0.0), (0.0, 50.0))  # 0.2 per weight
    out = allocate([a, b, c], 150.0)
    assert out.choice == {"a": SPARSE, "b": DENSE, "c": DENSE}
    assert [n for n, _ in out.upgrades] == ["b", "c"]
    # b does not fit 120 -> it stays 2:4 and the budget goes to the next ones
    assert allocate([a, b, c], 99.0).choice == {"a": SPARSE, "b": SPARSE, "c": DENSE}


@pytest.mark.parametrize("seed", range(10))
def test_budget_respected_and_monotone(seed):
    rng = random.Random(200 + seed)
    curves = [_random_curve(rng, f"l{i}") for i in range(6)]
    total = sum(c.numel for c in curves)
    prev = math.inf
    for s in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
        a = allocate(curves, budget_from_share(curves, s))
        assert a.cost <= s * total + 1e-9
        assert a.share(curves) <= s + 1e-12
        assert a.loss <= prev + 1e-9
        prev = a.loss
    assert prev == 0.0  # the whole budget: everything dense


def test_uniform_and_whole_layers_are_restricted_allocations():
    rng = random.Random(7)
    curves = [_random_curve(rng, f"l{i}") for i in range(4)]
    u = uniform(curves, CHOICES[1])
    assert set(u.choice.values()) == {CHOICES[1]}
    assert u.cost == pytest.approx(sum(c.cost[1] for c in curves))
    with pytest.raises(InputError, match="budget"):
        uniform(curves, CHOICES[1], budget=u.cost - 1)
    B = 0.4 * sum(c.numel for c in curves)
    w = whole_layers(curves, B)
    assert set(w.choice.values()) <= {SPARSE, DENSE} and w.cost <= B
    brute = _brute([Curve(c.name, c.numel, (SPARSE, DENSE), (c.loss[0], c.loss[-1]), (c.cost[0], c.cost[-1]))
                    for c in curves], B)
    assert brute <= w.loss <= brute + _max_step(curves) + 1e-9
    # the full allocator is never worse than its restrictions at the same budget (here: convex data)
    conv = [_random_curve(random.Random(9 + i), f"c{i}", convex=True) for i in range(4)]
    Bc = 0.3 * sum(c.numel for c in conv)
    assert allocate(conv, Bc).loss <= whole_layers(conv, Bc).loss + _max_step(conv)


def test_axes_restriction():
    ch = choices_for_axes("mixed")
    assert SPARSE in ch and DENSE in ch and {c.axis for c in ch} == {None, "rows", "cols"}
    assert {c.axis for c in choices_for_axes("rows")} == {None, "rows"}
    c = Curve("a", 100, ch, tuple(float(len(ch) - i) for i in range(len(ch))), tuple(float(i) for i in range(len(ch))))
    assert allocate([c], 1e9, allowed_for("cols", whole=False)).choice["a"].axis == "cols"
    assert allocate([c], 1e9, allowed_for("rows", whole=False)).choice["a"].axis == "rows"
    assert allocate([c], 1e9).choice["a"] == DENSE
    with pytest.raises(InputError, match="axes"):
        allowed_for("diag")
    with pytest.raises(InputError, match="none of the allowed"):
        allocate([Curve("x", 4, (SPARSE,), (1.0,), (0.0,))], 1.0, allowed=(DENSE,))


def test_errors():
    c = Curve("a", 100, (Choice(0.5, "cols"), DENSE), (1.0, 0.0), (50.0, 100.0))
    with pytest.raises(InputError, match="below the cheapest"):
        allocate([c], 10.0)
    with pytest.raises(InputError, match="two curves"):
        allocate([c, c], 1e9)
    with pytest.raises(InputError):
        Curve("b", 1, (SPARSE,), (float("nan"),), (0.0,))
    with pytest.raises(InputError):
        Curve("b", 1, (SPARSE, DENSE), (1.0,), (0.0,))
    with pytest.raises(InputError, match="axis"):
        Choice(0.25)
    with pytest.raises(InputError):
        Choice(1.5)
    with pytest.raises(InputError):
        budget_from_share([c], 1.2)


def test_choice_text_and_cost():
    for c in choices_for_axes("mixed"):
        assert parse_choice(str(c)) == c
    assert Choice(1.0, "rows") == DENSE and Choice(0.0, "cols") == SPARSE
    with pytest.raises(InputError):
        parse_choice("diag:0.3")
    assert choice_cost((576, 1536), SPARSE) == 0
    assert choice_cost((576, 1536), DENSE) == 576 * 1536
    assert choice_cost((576, 1536), Choice(0.25, "rows")) == dense_count(576, 0.25, 64) * 1536
    assert choice_cost((576, 1536), Choice(0.25, "cols")) == 576 * dense_count(1536, 0.25, 64)
    assert choice_cost((192, 576), Choice(0.1, "rows"), block=64) == 0  # rounds to no dense row


def test_plan_from_allocation():
    base = PruneConfig(method="spense", dense_ratio=0.25, strategy="random", axis="rows", percdamp=0.05)
    plan = plan_from_allocation({"a": SPARSE, "b": DENSE, "c": Choice(0.1, "rows"), "d": Choice(0.5, "cols")}, base)
    assert (plan["a"].method, plan["a"].dense_ratio) == ("sparsegpt", 0.0)
    assert plan["b"].method == "dense"
    assert (plan["c"].method, plan["c"].strategy, plan["c"].dense_ratio) == ("spense", "loss-rows", 0.1)
    assert (plan["d"].method, plan["d"].strategy, plan["d"].dense_ratio) == ("spense", "salience-cols", 0.5)
    assert all(p.percdamp == 0.05 and p.axis is None for p in plan.values())
    assert choice_config(SPARSE, PruneConfig(method="wanda", dense_ratio=0.0)).method == "wanda"
    assert plan_from_allocation({}, base) == {}
