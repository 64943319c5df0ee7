"""``spense.runtime.convert``: the pruned linears of a loaded checkpoint swapped for SpenseLinear."""

import pytest
import torch

from spense.errors import FormatError, InputError
from spense.runtime import SpenseLinear, convert
from test_runtime import make


def _model_and_manifest():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16))
    w, lay = make(32, 64, "rows", 0.5, seed=3)
    with torch.no_grad():
        model[0].weight.copy_(w)
    manifest = {"layers": {"0": {"weight": "0.weight", "transposed": False, "layout": lay.to_dict()}}}
    return model, manifest


def test_convert_swaps_pruned_linears():
    model, manifest = _model_and_manifest()
    x = torch.randn(4, 64)
    ref = model(x)
    convert(model, manifest, backend="reference")
    assert isinstance(model[0], SpenseLinear) and isinstance(model[2], torch.nn.Linear)
    assert model.spense_converted == 1
    assert torch.allclose(model(x), ref, atol=1e-5)
    convert(model, manifest, backend="reference")  # already converted: left as it is
    assert model.spense_converted == 0


def test_convert_refuses_a_manifest_that_does_not_fit_the_model():
    model, manifest = _model_and_manifest()
    with pytest.raises(InputError, match="not in the model"):
        convert(model, {"layers": {"9": manifest["layers"]["0"]}})
    with pytest.raises(FormatError, match="layout"):
        convert(model, {"layers": {"2": manifest["layers"]["0"]}})  # a 16 x 32 weight for a 32 x 64 layout
