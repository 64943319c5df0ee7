"""The ``spense`` typer app, its consoles and the error handling every command shares.

Every :class:`~spense.errors.SpenseError` is printed as one red ``error: ...`` line on stderr and
the command exits with status 2 (no traceback).  Warnings are printed as yellow ``warning: ...``
lines on stderr.  Machine-readable output (``--json``) goes to stdout only.
"""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Callable

import typer

from spense.errors import SpenseError
from spense.log import setup_cli_logging, stderr_is_terminal

app = typer.Typer(
    name="spense",
    help="One-shot hybrid 2:4-sparse + dense pruning of LLMs (SpenseGPT). Everything is local: "
    "spense never downloads models or data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# --------------------------------------------------------------------------------------------------
# output helpers
# --------------------------------------------------------------------------------------------------
def _err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out_console():
    from rich.console import Console

    # piped/captured output: wide enough that tables are never truncated
    tty = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=True, width=None if tty else 200)


def _print_error(msg: str) -> None:
    from rich.markup import escape

    _err_console().print(f"[bold red]error:[/bold red] [red]{escape(msg)}[/red]")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    from rich.markup import escape

    _err_console().print(f"[yellow]warning: {escape(str(message))}[/yellow]")


def _bars(quiet: bool) -> bool:
    """Progress bars only for a terminal (piped stderr would collect blank lines)."""
    return not quiet and stderr_is_terminal()


def _quiet_libraries() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover
        pass


def handle_errors(fn: Callable) -> Callable:
    """Run a command; a SpenseError becomes one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        old = warnings.showwarning
        warnings.showwarning = _show_warning
        _quiet_libraries()
        setup_cli_logging(bool(kwargs.get("quiet", False)))  # per-layer log lines when stderr is no tty
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", UserWarning)
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except SpenseError as e:
            _print_error(str(e))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            _print_error("interrupted (a `spense prune` run resumes where it stopped when rerun)")
            raise typer.Exit(130) from None
        finally:
            warnings.showwarning = old

    return wrapper
