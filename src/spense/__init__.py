"""Spense: one-shot hybrid 2:4-sparse + dense pruning of LLMs and a GPU runtime for the result."""

__version__ = "0.1.0"

from spense.errors import (  # noqa: E402
    CheckpointError,
    DeviceError,
    FormatError,
    InputError,
    NumericalError,
    SpenseError,
)

__all__ = [
    "__version__",
    "SpenseError",
    "InputError",
    "FormatError",
    "NumericalError",
    "CheckpointError",
    "DeviceError",
]
