"""GPU runtime for the Spense format: :class:`SpenseLinear`, :func:`convert`, packed checkpoints."""

from spense.runtime.convert import convert
from spense.runtime.linear import BACKENDS, SpenseLinear

__all__ = ["SpenseLinear", "convert", "BACKENDS", "pack_checkpoint", "load_packed"]


def __getattr__(name):
    if name in ("pack_checkpoint", "load_packed"):
        import spense.runtime.checkpoint as checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(name)
