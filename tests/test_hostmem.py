"""The host-memory count and refusal (``spense.hostmem``)."""

from __future__ import annotations

import pytest

from spense import hostmem
from spense.errors import InputError


def test_mem_available_reads_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       2000 kB\nMemAvailable:   1000 kB\nSwapTotal: 800 kB\nSwapFree:        500 kB\n")
    assert hostmem.mem_available(meminfo=str(f)) == 1000 * 1024
    assert hostmem.mem_available(swap=True, meminfo=str(f)) == 1500 * 1024
    f.write_text("MemTotal:       2000 kB\nMemAvailable:   1000 kB\n")  # no swap line: unknown, not zero
    assert hostmem.mem_available(swap=True, meminfo=str(f)) is None
    assert hostmem.mem_available(meminfo=str(tmp_path / "none")) is None


def test_check_fits():
    hostmem.check_fits(10, "x", "y", available=10)
    with pytest.raises(InputError, match=r"^loading m needs 2\.0 GB of host memory; 1\.0 GB are available "
                                         r"\(free memory and swap\)\. Use more\.$"):
        hostmem.check_fits(2 * 10**9, "loading m", "Use more.", available=10**9)


def test_a_model_too_large_for_the_host_is_refused_before_its_load(tiny_llama_dir, monkeypatch):
    """The count comes from the safetensors headers: float32 needs 4 bytes an element, bfloat16 2."""
    import torch

    from spense.hf import load_model
    from spense.weights import check_weights_readable

    numel = check_weights_readable(tiny_llama_dir)
    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: 3 * numel)
    with pytest.raises(InputError, match=rf"^loading {tiny_llama_dir} in float32 \(0\.00 B weights\) needs "
                                         r"0\.0 GB of host memory; 0\.0 GB are available"):
        load_model(tiny_llama_dir)
    assert load_model(tiny_llama_dir, dtype=torch.bfloat16).dtype == torch.bfloat16
