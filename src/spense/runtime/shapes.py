"""Shape rules shared by every runtime module (one place, so that backends agree).

``bucket(M)``: the M bucket of a call with ``M`` token rows — the smallest power of two ``>= M``
(``bucket(0) = bucket(1) = 1``).  Every per-M decision of the runtime (measured backend choice,
kernel launch configuration, the ``auto`` table) is keyed by this bucket.  ``DECODE_MAX_M``: the decode kernels'
range of M (above it: the prefill path).
"""

from __future__ import annotations

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
