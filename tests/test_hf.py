"""Device resolution (spense.hf.resolve_device): only cpu and cuda are served, each refusal an InputError/DeviceError."""

from __future__ import annotations

import pytest
import torch

from spense.errors import DeviceError, InputError
from spense.hf import resolve_device


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["foo", "cuda:x", ""])
def test_resolve_device_unknown(name):
    with pytest.raises(InputError, match="unknown device"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["mps", "meta", "xpu"])
def test_resolve_device_other_backends_refused(name):
    """torch parses these, but no spense path runs on them: refused by name, not a dispatcher traceback later."""
    with pytest.raises(InputError, match=f"device '{name}' is not supported"):
        resolve_device(name)


def test_resolve_device_cuda_index_out_of_range():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceError, match="CUDA"):
        resolve_device(f"cuda:{n + 3}")
