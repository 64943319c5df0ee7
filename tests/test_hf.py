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



def test_source_dtype_is_the_stored_weights(tiny_llama_dir, tmp_path):
    """The weights decide, not config.json: bf16 weights under a config without a dtype stay bf16 (not a float32
    checkpoint twice their size), float32 weights under a config that says bf16 stay float32."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from spense.hf import source_dtype

    assert source_dtype(tiny_llama_dir) == torch.float32
    d = tmp_path / "bf16"
    shutil.copytree(tiny_llama_dir, d)
    save_file({k: v.to(torch.bfloat16) for k, v in load_file(d / "model.safetensors").items()}, d / "model.safetensors")
    cfg = json.loads((d / "config.json").read_text())
    cfg.pop("dtype", None), cfg.pop("torch_dtype", None)
    (d / "config.json").write_text(json.dumps(cfg))
    assert source_dtype(d) == torch.bfloat16
    f = tmp_path / "f32"
    shutil.copytree(tiny_llama_dir, f)
    cfg["dtype"] = "bfloat16"
    (f / "config.json").write_text(json.dumps(cfg))
    assert source_dtype(f) == torch.float32
    (f / "model.safetensors").unlink()  # no safetensors: config.json decides
    assert source_dtype(f) == torch.bfloat16
