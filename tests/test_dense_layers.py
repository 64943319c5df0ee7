"""``--dense-layers SPEC``: parser, its errors, and the ``auto`` resolution."""

from __future__ import annotations

import pytest

from spense.allocate import DENSE, SPARSE, Curve
from spense.dense_layers import layer_index, parse_spec, resolve_auto, split_auto
from spense.errors import InputError

MODS = ("self_attn.q_proj", "self_attn.k_proj", "mlp.up_proj", "mlp.down_proj")
NAMES = [f"model.layers.{i}.{m}" for i in range(4) for m in MODS]
NUMEL = {n: (300 if n.endswith(("up_proj", "down_proj")) else 100) for n in NAMES}
TOTAL = sum(NUMEL.values())  # 4 * 800 = 3200


def L(i: int, m: str) -> str:
    return f"model.layers.{i}.{m}"


def test_layer_index():
    assert layer_index("model.layers.12.mlp.down_proj") == 12
    assert layer_index("transformer.h.3.attn.c_attn") == 3
    assert layer_index("lm_head") is None


def test_ranges_and_single_layers():
    assert parse_spec("0-1", NAMES, NUMEL) == NAMES[:8]
    assert parse_spec("3", NAMES, NUMEL) == NAMES[12:]
    assert parse_spec(" 2 , 0 ", NAMES, NUMEL) == NAMES[:4] + NAMES[8:12]  # model order, spaces ok


def test_names_and_suffixes():
    assert parse_spec("down_proj", NAMES, NUMEL) == [L(i, "mlp.down_proj") for i in range(4)]
    assert parse_spec("mlp.down_proj", NAMES, NUMEL) == [L(i, "mlp.down_proj") for i in range(4)]
    assert parse_spec("model.layers.2.self_attn.k_proj,up_proj", NAMES, NUMEL) == [
        L(0, "mlp.up_proj"), L(1, "mlp.up_proj"), L(2, "self_attn.k_proj"), L(2, "mlp.up_proj"),
        L(3, "mlp.up_proj")]
    # a suffix matches whole components only: "proj" is not "q_proj"
    with pytest.raises(InputError, match="matches no"):
        parse_spec("proj", NAMES, NUMEL)


def test_auto_marker():
    out = parse_spec("0,auto:0.25", NAMES, NUMEL)
    assert out[:-1] == NAMES[:4] and out[-1].startswith("auto:")
    names, frac = split_auto(out)
    assert names == NAMES[:4] and frac == 0.25
    assert split_auto(parse_spec("auto:0.1", NAMES, NUMEL)) == ([], 0.1)
    assert split_auto(["a", "b"]) == (["a", "b"], None)


@pytest.mark.parametrize("spec,match", [
    ("", "empty SPEC"),
    ("   ", "empty SPEC"),
    ("0,,1", "empty item"),
    ("0-", "bad item"),
    ("-3", "bad item"),
    ("a-b", "bad item"),
    ("0..2", "bad item"),
    ("down_proj!", "bad item"),
    ("3-1", "low-high"),
    ("0-4", "past the last layer"),
    ("7", "past the last layer"),
    ("foo_proj", "matches no"),
    ("0-1,1", "named twice"),
    ("down_proj,mlp.down_proj", "named twice"),
    ("2,down_proj", "named twice"),
    ("auto:0", r"\(0, 1\)"),
    ("auto:1", r"\(0, 1\)"),
    ("auto:-0.2", r"\(0, 1\)"),
    ("auto:nan", r"\(0, 1\)"),
    ("auto:x", "fraction"),
    ("auto", "fraction"),
    ("auto:0.1,auto:0.2", "twice"),
    ("0-2,auto:0.5", "more than the whole model"),
    ("0-3,auto:0.1", "more than the whole model"),
])
def test_errors(spec, match):
    with pytest.raises(InputError, match=match) as e:
        parse_spec(spec, NAMES, NUMEL)
    assert "\n" not in str(e.value)


def test_whole_model_named_is_allowed():
    assert parse_spec("0-3", NAMES, NUMEL) == NAMES


def _curves(per_weight: dict[str, float]) -> dict[str, Curve]:
    return {n: Curve(n, NUMEL[n], (SPARSE, DENSE), (per_weight[n] * NUMEL[n], 0.0), (0.0, float(NUMEL[n])))
            for n in NAMES}


def test_resolve_auto_picks_by_loss_per_weight():
    per = {n: 1.0 for n in NAMES}
    per[L(3, "mlp.down_proj")] = 5.0  # 300 weights
    per[L(1, "self_attn.q_proj")] = 4.0  # 100 weights
    per[L(0, "self_attn.q_proj")] = 9.0  # named anyway
    curves = _curves(per)
    sel = parse_spec("model.layers.0.self_attn.q_proj,auto:0.125", NAMES, NUMEL)  # 400 of 3200 weights
    out = resolve_auto(sel, curves)
    assert out == [L(0, "self_attn.q_proj"), L(1, "self_attn.q_proj"), L(3, "mlp.down_proj")]
    assert resolve_auto(parse_spec("1", NAMES, NUMEL), curves) == NAMES[4:8]  # no auto: unchanged
    with pytest.raises(InputError, match="no sensitivity curve"):
        resolve_auto(["nope", "auto:0.1"], curves)


def test_numels_needed():
    with pytest.raises(InputError, match="no weight size"):
        parse_spec("0", NAMES, {})
    assert resolve_auto(["auto:0.01"], _curves({n: 1.0 for n in NAMES})) == []
