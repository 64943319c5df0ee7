"""Exception types. Every error a user can trigger is a :class:`SpenseError` with a specific message."""


class SpenseError(Exception):
    """Base class for all errors raised on purpose by spense (the CLI prints them and exits 2)."""


class InputError(SpenseError, ValueError):
    """Bad user input: paths, options, text, model directories."""


class UnsupportedModel(InputError):
    """A model the decode engine does not compute (its architecture, or its RoPE scaling); transformers may still
    run it (``spense generate`` falls back to it).  ``what``: what the engine lacks, in a few words."""

    def __init__(self, message: str, what: str = "this model"):
        super().__init__(message)
        self.what = what


class FormatError(SpenseError, ValueError):
    """A weight or layout that does not satisfy the Spense format (2:4 pattern, regions, indices)."""


class NumericalError(SpenseError, ArithmeticError):
    """NaN/Inf in weights or activations, or a Hessian that stays singular after damping."""


class CheckpointError(SpenseError, OSError):
    """A checkpoint that is missing, truncated, tampered with, or would overwrite something."""


class DeviceError(SpenseError, RuntimeError):
    """A GPU feature the requested backend needs is missing."""


def first_line(e: BaseException) -> str:
    """The first non-blank line of an exception's message (its type's name when it has none): a library's
    multi-line explanation inside one of our one-line errors."""
    return next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
