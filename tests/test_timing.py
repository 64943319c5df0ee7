"""The runtime's CUDA-graph timer (spense.runtime.timing): cuBLAS workspaces dropped around it (CPU, with the
clearing counted), and no GPU memory left held by a timing (``gpu``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spense.runtime import timing

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_workspaces_dropped_on_entry_and_on_exit_even_when_the_body_raises(monkeypatch):
    calls = []
    monkeypatch.setattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: calls.append("clear"), raising=False)
    with timing.fresh_blas_workspaces():
        calls.append("body")
    assert calls == ["clear", "body", "clear"]
    with pytest.raises(RuntimeError, match="boom"):
        with timing.fresh_blas_workspaces():
            raise RuntimeError("boom")
    assert calls[3:] == ["clear", "clear"]


@pytest.mark.gpu
@gpu
def test_gpu_timing_cublas_on_fresh_streams_leaves_no_memory_held():
    """Each timing warms up on a new side stream; before the fix each left a cuBLAS workspace (32 MiB on Hopper)."""
    x = torch.randn(4, 1024, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(2048, 1024, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(3):
        assert timing.time_graph([lambda: F.linear(x, w)]) > 0
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before + (1 << 20)
