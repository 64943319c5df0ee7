"""Devices and dtypes (spense.hf.resolve_device, parse_dtype): only cpu/cuda and float32/float16/bfloat16 are served;
each refusal is an InputError or DeviceError."""

from __future__ import annotations

import pytest
import torch

from spense.errors import DeviceError, InputError
from spense.hf import parse_dtype, resolve_device


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


def test_resolve_device_checks_a_torch_device_too():
    with pytest.raises(InputError, match="not supported"):
        resolve_device(torch.device("meta"))
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_parse_dtype():
    assert parse_dtype(None) is None
    assert parse_dtype("BF16") is torch.bfloat16 and parse_dtype(torch.float16) is torch.float16
    for bad in ("int8", torch.int8, torch.float8_e4m3fn, torch.float64):
        with pytest.raises(InputError, match="unknown dtype"):
            parse_dtype(bad)

