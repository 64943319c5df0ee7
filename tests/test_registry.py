"""The one vocabulary: CLI choices, validation and manifest fields come from spense.registry."""

import pytest
import torch

from spense import registry
from spense.errors import InputError
from spense.methods import PruneConfig, prune_layer


def test_cli_choices_are_the_registry():
    from spense.cli import common as commands

    assert [m.value for m in commands.Method] == list(registry.METHODS)
    assert [s.value for s in commands.Strategy] == list(registry.STRATEGIES)
    assert [s.value for s in commands.Salience] == list(registry.SALIENCES)
    assert [s.value for s in commands.Sequential] == ["true", "block"]


@pytest.mark.parametrize("name", list(registry.METHODS))
def test_every_method_validates_with_its_default_ratio(name):
    PruneConfig(method=name, dense_ratio=registry.default_dense_ratio(name)).validate()


def test_validation_messages():
    with pytest.raises(InputError, match="unknown method 'nope'; choose one of spense, sparsegpt"):
        PruneConfig(method="nope").validate()
    with pytest.raises(InputError, match="unknown dense strategy"):
        PruneConfig(strategy="x").validate()
    with pytest.raises(InputError, match="method 'wanda' has no dense region"):
        PruneConfig(method="wanda", dense_ratio=0.25).validate()
    with pytest.raises(InputError, match="works on rows, not cols"):
        PruneConfig(strategy="loss-rows", axis="cols").validate()
    with pytest.raises(InputError, match="unknown sequential mode"):
        registry.check_sequential("false")


def test_method_config_lists_only_the_fields_a_method_reads():
    mc = registry.method_config(PruneConfig(method="magnitude", dense_ratio=0.0))
    assert mc == {"method": "magnitude", "n": 2, "m": 4}
    mc = registry.method_config(PruneConfig(method="spense", strategy="random", axis="rows"))
    assert mc["axis"] == "rows" and "seed" in mc and "salience" not in mc
    assert registry.record_fields(PruneConfig(method="sparsegpt", dense_ratio=0.0))["strategy"] is None


def test_dense_method_keeps_the_weight_with_an_all_dense_layout():
    W = torch.randn(8, 32)
    X = torch.randn(100, 32)
    res = prune_layer(W, 2 * X.T @ X / 100, PruneConfig(method="dense", dense_ratio=0.0, block=16))
    assert torch.equal(res.weight, W) and res.loss == 0.0
    assert res.layout.axis == "cols" and res.layout.n_dense == 32 and res.layout.dense_ratio == 1.0
