"""Shape rules shared by every runtime module (one place, so that backends agree).

``bucket(M)``: the M bucket of a call with ``M`` token rows — the smallest power of two ``>= M``
(``bucket(0) = bucket(1) = 1``).  Every per-M decision of the runtime (measured backend choice,
kernel launch configuration, the ``auto`` table) is keyed by this bucket.  ``DECODE_MAX_M``: the decode kernels'
range of M (above it: the prefill path).  ``device_index(device)``: the index that per-device state (workspaces,
counters, kept kernel choices) is keyed by.  ``own_weight(...)``: whether a kernel timing may time a layer's own weight.
"""

from __future__ import annotations

import torch

DECODE_MAX_M = 64


def bucket(M: int) -> int:
    """``2 ** ceil(log2(max(M, 1)))``: the power-of-two M bucket of a call with ``M`` rows."""
    M = int(M)
    if M < 0:
        raise ValueError(f"bucket: M must be >= 0, got {M}")
    return 1 if M <= 1 else 1 << (M - 1).bit_length()


def pad_to(n: int, m: int) -> int:
    """``ceil(n / m) * m``: ``n`` rounded up to a multiple of ``m``."""
    return (int(n) + m - 1) // m * m


def device_index(device: torch.device) -> int:
    """``device``'s index; a CUDA device given without one is the current CUDA device, any other device 0."""
    if device.index is not None:
        return device.index
    return torch.cuda.current_device() if device.type == "cuda" else 0


def own_weight(weight: torch.Tensor | None, N: int, K: int, device, dtype: torch.dtype) -> bool:
    """Whether a kernel timing can time ``weight`` itself: a contiguous (N, K) ``dtype`` tensor on ``device``."""
    dev = torch.device(device)
    return (weight is not None and tuple(weight.shape) == (N, K) and weight.dtype == dtype and weight.is_contiguous()
            and weight.device.type == dev.type and device_index(weight.device) == device_index(dev))
