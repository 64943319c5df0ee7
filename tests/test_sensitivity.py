"""Sensitivity curves measured on a tiny random Llama made here."""

from __future__ import annotations

import json
import logging
import math
import warnings

import pytest
import torch

from spense.allocate import (
    DENSE,
    SPARSE,
    Choice,
    allocate,
    budget_from_share,
    choice_cost,
)
from spense.capture import capture_inputs, run_block
from spense.errors import CheckpointError, InputError
from spense.hf import find_blocks, find_linears, get_weight
from spense.methods import PruneConfig, prune_layer
from spense.sensitivity import UNITS, _Runner, measure_curves, measure_units

CHOICES = (SPARSE, Choice(0.25, "rows"), Choice(0.5, "rows"), Choice(0.5, "cols"), DENSE)
CFG = PruneConfig(block=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: one thread is ~20x faster than several on a shared, busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    conf = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LlamaForCausalLM(conf).eval()
    windows = torch.randint(0, 96, (3, 24), generator=torch.Generator().manual_seed(1))
    return model, windows


@pytest.fixture(scope="module")
def measured(tiny):
    model, windows = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = {}

    def keep(name, choice, W, loss):
        seen[(name, choice)] = (W.clone(), loss)

    curves = measure_units(model, windows, CFG, CHOICES, "cpu", UNITS, batch=2, on_result=keep)
    return curves, before, seen


def _names(model):
    prefix, blocks = find_blocks(model)
    return [f"{prefix}.{i}.{n}" for i, b in enumerate(blocks) for n in find_linears(b, 16, 4)]


def test_names_costs_and_finite(tiny, measured):
    model, _ = tiny
    curves, _, _ = measured
    names = _names(model)
    assert len(names) == 14
    for u in UNITS:
        assert list(curves[u]) == names
        for n, c in curves[u].items():
            assert c.choices == CHOICES
            assert all(math.isfinite(x) and x >= 0 for x in c.loss)
            assert c.loss[-1] == 0.0 and c.loss[0] > 0  # whole dense loses nothing, 2:4 something
            N, K = get_weight(dict(model.named_modules())[n]).shape
            assert c.numel == N * K
            assert c.cost == tuple(float(choice_cost((N, K), ch, 16)) for ch in CHOICES)


def test_curves_are_monotone(measured):
    curves, _, _ = measured
    for c in curves["obs"].values():
        # loss-rows restores whole rows of the same trial: exactly non-increasing in the share
        assert c.loss[0] >= c.loss[1] >= c.loss[2] >= c.loss[-1]
        assert c.loss[3] < c.loss[0]  # half the columns dense beats pure 2:4
    for u in ("block", "next-block", "obs-rel"):
        worse = [n for n, c in curves[u].items() if not c.loss[2] <= c.loss[0] * (1 + 1e-6)]
        assert len(worse) <= 1, (u, worse)  # monotone-ish once propagated through the block


def test_obs_units_match_prune_layer(tiny, measured):
    """The obs losses are those of spense.methods.prune_layer (Hessian of the dense model)."""
    model, windows = tiny
    curves, _, seen = measured
    prefix, blocks = find_blocks(model)
    inputs = capture_inputs(model, windows, torch.device("cpu"))
    name = f"{prefix}.0.mlp.gate_proj"
    mod = blocks[0].mlp.gate_proj
    X = []
    h = mod.register_forward_pre_hook(lambda m, a: X.append(a[0].reshape(-1, a[0].shape[-1])))
    try:
        run_block(blocks[0], inputs, torch.device("cpu"), keep=False)
    finally:
        h.remove()
    X = torch.cat(X).float()
    H = 2 * X.T @ X / X.shape[0]
    W = get_weight(mod)
    for i, ch in enumerate(CHOICES[:-1]):
        from spense.allocate import choice_config

        ref = prune_layer(W, H, choice_config(ch, CFG), name)
        assert curves["obs"][name].loss[i] == pytest.approx(ref.loss, rel=1e-3, abs=1e-7)
        assert torch.allclose(seen[(name, ch)][0], ref.weight, atol=1e-5)
    energy = float(((W @ H) * W).sum()) / 2
    assert curves["obs-rel"][name].loss[0] == pytest.approx(curves["obs"][name].loss[0] / energy, rel=1e-3)


def test_model_left_dense(tiny, measured):
    model, _ = tiny
    _, before, _ = measured
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_batched_runner_matches_run_block(tiny):
    model, windows = tiny
    _, blocks = find_blocks(model)
    inputs = capture_inputs(model, windows, torch.device("cpu"))
    ref = run_block(blocks[0], inputs, torch.device("cpu"))
    got = _Runner(blocks[0], inputs, torch.device("cpu"), batch=2)(inputs.hidden)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_measure_curves_one_unit_and_allocates(tiny, caplog):
    model, windows = tiny
    with caplog.at_level(logging.INFO, logger="spense"):
        curves = measure_curves(model, windows[:2], CFG, (SPARSE, Choice(0.5, "cols"), DENSE), "cpu", unit="block")
    a = allocate(curves.values(), budget_from_share(curves.values(), 0.3))
    assert a.share(curves.values()) <= 0.3 and a.loss < sum(c.loss[0] for c in curves.values())
    # one progress record per block (what the CLI prints where no bar shows), naming its linears and choices
    prefix, blocks = find_blocks(model)
    lines = [r.getMessage() for r in caplog.records if "sensitivity" in r.getMessage()]
    assert len(lines) == len(blocks)
    for i, (line, b) in enumerate(zip(lines, blocks)):
        n = len(find_linears(b, 16, 4))
        assert line.startswith(f"{prefix}.{i}: sensitivity of {n} linears x 3 choices in ")
        assert line.endswith(f"(block {i + 1}/{len(blocks)})")


def test_interrupted_pass_resumes_bit_identically(tiny, measured, tmp_path):
    """A pass stopped after block 0 resumes from its checkpoint: the same curves in every unit, to the bit."""
    model, windows = tiny
    prefix, _ = find_blocks(model)
    root = tmp_path / "sens"

    def crash(name, choice, W, loss):
        if name.startswith(f"{prefix}.1."):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_units(model, windows, CFG, CHOICES, "cpu", UNITS, batch=2, on_result=crash, checkpoint=root)
    saved = json.loads((root / "pass.json").read_text())
    assert saved["next"] == 1 and (root / saved["tensors"]).is_file()
    seen = []
    curves = measure_units(model, windows, CFG, CHOICES, "cpu", UNITS, batch=2, checkpoint=root,
                           on_result=lambda name, *_: seen.append(name))
    assert seen and all(n.startswith(f"{prefix}.1.") for n in seen)  # block 0 came from the checkpoint
    assert curves == measured[0]
    assert sorted(p.name for p in root.iterdir()) == ["pass.json", "pass_2.safetensors"]
    with pytest.raises(CheckpointError, match="another pass"):  # other choices: refused, not mixed in
        measure_units(model, windows, CFG, CHOICES[:2], "cpu", UNITS, batch=2, checkpoint=root)


def test_bad_unit(tiny):
    model, windows = tiny
    with pytest.raises(InputError, match="unit"):
        measure_curves(model, windows, CFG, CHOICES, "cpu", unit="kl")


# ---- build_plan: the options of `spense prune` ------------------------------------------------------
from spense.format import is_nm
from spense.sensitivity import build_plan, check_plan_options

SPENSE = PruneConfig(method="spense", dense_ratio=0.25, block=16)


def test_no_options_no_plan(tiny):
    model, windows = tiny
    assert build_plan(model, windows, SPENSE, "cpu") == (None, None)


def test_dense_layers_plan_prunes_through_pipeline(tiny):
    """Kept layers are bit-identical to the source, the others exactly 2:4 (plan honoured end to end)."""
    import copy

    from spense.pipeline import prune_loaded

    model, windows = tiny
    cfg = PruneConfig(method="sparsegpt", dense_ratio=0.0, block=16)
    plan, info = build_plan(model, windows, cfg, "cpu", dense_layers="0,model.layers.1.mlp.down_proj")
    prefix, blocks = find_blocks(model)
    layer0 = [f"{prefix}.0.{n}" for n in find_linears(blocks[0], 16, 4)]
    assert sorted(plan) == sorted(layer0 + [f"{prefix}.1.mlp.down_proj"])
    assert all(c.method == "dense" for c in plan.values())
    assert info["unit"] is None and info["choices"][f"{prefix}.1.mlp.down_proj"] == "dense"
    m2 = copy.deepcopy(model)
    records = prune_loaded(m2, windows, cfg, "cpu", progress=False, plan=plan)
    src, mods = dict(model.named_modules()), dict(m2.named_modules())
    for n in _names(model):
        w = mods[n].weight.data
        if n in plan:
            assert torch.equal(w, src[n].weight.data), n
            assert any(r.get("method") == "dense" for k, r in records.items() if k.startswith(n))
        else:
            assert is_nm(w, 2, 4), n
    share = sum(mods[n].weight.numel() for n in plan) / sum(mods[n].weight.numel() for n in _names(model))
    assert info["share"] == pytest.approx(share)


def test_auto_dense_layers(tiny):
    model, windows = tiny
    cfg = PruneConfig(method="sparsegpt", dense_ratio=0.0, block=16)
    plan, info = build_plan(model, windows, cfg, "cpu", dense_layers="auto:0.3")
    assert plan and all(c.method == "dense" for c in plan.values())
    assert 0 < info["share"] <= 0.3 and info["unit"] == "block"


def test_greedy_budget_plan(tiny):
    model, windows = tiny
    plan, info = build_plan(model, windows[:2], SPENSE, "cpu", budget_alloc="greedy", axes="mixed",
                            shares=(0.25, 0.5))
    names = _names(model)
    assert sorted(plan) == sorted(names)
    assert info["share"] <= 0.25 + 1e-9 and info["budget_share"] == 0.25
    assert {c.method for c in plan.values()} <= {"sparsegpt", "spense", "dense"}
    forced, finfo = build_plan(model, windows[:2], SPENSE, "cpu", budget_alloc="greedy",
                               dense_layers="model.layers.1.self_attn.q_proj", shares=(0.5,))
    assert forced["model.layers.1.self_attn.q_proj"].method == "dense" and finfo["share"] <= 0.25 + 1e-9
    with pytest.raises(InputError, match="more than the budget"):
        build_plan(model, windows[:2], SPENSE, "cpu", budget_alloc="greedy", dense_layers="0-1")


def test_uniform_axes_plan(tiny):
    model, windows = tiny
    rows, _ = build_plan(model, windows, SPENSE, "cpu", axes="rows")
    assert {(c.strategy, c.dense_ratio) for c in rows.values()} == {("loss-rows", 0.25)}
    mixed, info = build_plan(model, windows[:2], SPENSE, "cpu", axes="mixed")
    assert {c.strategy for c in mixed.values()} <= {"loss-rows", "salience-cols"}
    assert set(info["choices"].values()) <= {"rows:0.25", "cols:0.25"}


@pytest.mark.parametrize("kw,match", [
    ({"cfg": PruneConfig(method="dense", dense_ratio=0.0), "dense_layers": "0"}, "method dense"),
    ({"cfg": PruneConfig(method="sparsegpt", dense_ratio=0.0), "budget_alloc": "greedy"}, "greedy"),
    ({"cfg": PruneConfig(method="wanda", dense_ratio=0.0), "axes": "rows"}, "--axes"),
    ({"cfg": SPENSE, "budget_alloc": "best"}, "budget allocation"),
    ({"cfg": SPENSE, "axes": "diag"}, "axes"),
])
def test_plan_option_errors(kw, match):
    with pytest.raises(InputError, match=match):
        check_plan_options(**kw)


def test_final_unit_is_block_loss_times_a_per_block_gain(tiny, measured):
    model, _ = tiny
    curves, _, _ = measured
    prefix, blocks = find_blocks(model)
    for n, fc in curves["final"].items():
        bc = curves["block"][n]
        if n.startswith(f"{prefix}.{len(blocks) - 1}."):
            assert fc.loss == bc.loss  # the last block's output is the final output: gain 1
        ratios = {round(f / b, 9) for f, b in zip(fc.loss, bc.loss) if b > 0}
        assert len(ratios) == 1 and next(iter(ratios)) > 0  # one gain per block
    g0 = [curves["final"][n].loss[0] / curves["block"][n].loss[0] for n in curves["block"] if ".0." in n]
    assert max(g0) == pytest.approx(min(g0))
