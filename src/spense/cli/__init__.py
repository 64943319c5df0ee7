"""The ``spense`` command line, the top floor: nothing in the package imports it.

Every :class:`~spense.errors.SpenseError` is printed as one red ``error: ...`` line on stderr and
the command exits with status 2 (no traceback).  Warnings are printed as yellow ``warning: ...``
lines on stderr.  Machine-readable output (``--json``) goes to stdout only.

Each group of commands lives in a module of its own and registers itself on :data:`app`.
"""

from __future__ import annotations

from spense.cli.app import app, handle_errors, run
from spense.cli import prune, commands  # noqa: F401  (register prune; pack, eval, validate, inspect, demo)
from spense.cli.commands import demo_methods


def _register_bench() -> None:
    """``spense bench`` and ``spense generate`` register themselves on ``app`` when imported."""
    from spense.cli import bench, generate  # noqa: F401


_register_bench()


def main() -> None:
    """Console-script entry point (``spense``): exits with the command's status."""
    raise SystemExit(run())


__all__ = ["app", "demo_methods", "handle_errors", "main"]
