"""The ``spense`` typer app, its consoles and the error handling every command shares.

Every :class:`~spense.errors.SpenseError` is printed as one red ``error: ...`` line on stderr and
the command exits with status 2 (no traceback).  Warnings are printed as yellow ``warning: ...``
lines on stderr.  Machine-readable output (``--json``) goes to stdout only.
"""

from __future__ import annotations

import errno
import functools
import signal
import sys
import warnings
from typing import Callable

import typer

from spense.errors import SpenseError, first_line
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


def literal(value) -> str:
    """``str(value)`` escaped for rich markup, so that a path such as ``ck[v2]`` or ``a[/b]`` prints as it is."""
    from rich.markup import escape

    return escape(str(value))


def _print_error(msg: str) -> None:
    """``error: msg`` in red on stderr, always one line (a library's multi-line text is joined)."""
    from rich.markup import escape

    msg = " ".join(ln.strip() for ln in str(msg).splitlines() if ln.strip())
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


def usage_line(e, args: list[str] | None = None) -> str:
    """A click usage/parameter error as one line: ``<message> (see '<command> -h')``. click's parser names no
    subcommand for an option left without its value (``spense prune M --out``); the first word of ``args``
    that is a command names it then."""
    msg = " ".join(e.format_message().replace("Value error, ", "").split())
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else app.info.name or "spense"
    if " " not in where:
        words = list(sys.argv[1:] if args is None else args)
        names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
        cmd = next((w for w in words if not str(w).startswith("-")), None)
        if cmd in names:
            where = f"{where} {cmd}"
    return f"{msg} (see '{where} -h')"


def run(args: list[str] | None = None) -> int:
    """Run the app; a wrong option or argument is one red ``error:`` line and exit status 2.

    typer's own handler draws a boxed, multi-line usage message; a user who mistypes a flag gets
    the same single line as every other refusal instead.  ``spense`` with no arguments still
    prints the help.
    """
    no_args, click_error, aborts = _click_exceptions()
    try:
        rv = app(args=args, standalone_mode=False, prog_name="spense")
    except no_args as e:  # typer has printed the help already; plain click hands it back
        if e.format_message().strip():
            e.show()
        return 2
    except click_error as e:
        _print_error(usage_line(e, args))
        return e.exit_code
    except aborts:
        _print_error("aborted")
        return 1
    return rv if isinstance(rv, int) else 0


def _click_exceptions() -> tuple[type, type, tuple[type, ...]]:
    """click's NoArgsIsHelpError, ClickException and Abort classes as typer raises them.

    typer >= 0.2x carries its own copy of click (``typer._click``), older typer uses ``click``:
    the classes are found from ``typer.BadParameter``'s bases, so either works.
    """
    bases = {c.__name__: c for c in typer.BadParameter.__mro__}
    module = sys.modules[bases["UsageError"].__module__]
    no_args = getattr(module, "NoArgsIsHelpError", None) or type("_Never", (Exception,), {})
    aborts = tuple({typer.Abort, getattr(module, "Abort", typer.Abort)})
    return no_args, bases["ClickException"], aborts


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation that failed: MemoryError, torch's OutOfMemoryError (CUDA), or the
    RuntimeError torch's CPU allocator raises ("can't allocate memory")."""
    return (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in str(e) or "CUDA out of memory" in str(e))


def disk_full(e: BaseException) -> bool:
    """Whether ``e`` is a write that found no space: ``OSError`` ENOSPC, or safetensors' error carrying it."""
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e)


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, Slurm, Kubernetes): ends a run as Ctrl-C does, so its temp files go, with exit status 143."""


def _terminated(signum, frame):
    raise Terminated


#: the commands that keep their finished work when interrupted and resume it when rerun
RESUMABLE = ("prune", "demo")


def handle_errors(fn: Callable) -> Callable:
    """Run a command; a SpenseError becomes one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        old = warnings.showwarning
        warnings.showwarning = _show_warning
        _quiet_libraries()
        # per-layer log lines when stderr is no tty; none, and no bars, for -q or --json
        setup_cli_logging(bool(kwargs.get("quiet", False) or kwargs.get("as_json", False)))
        try:
            old_term = signal.signal(signal.SIGTERM, _terminated)
        except ValueError:  # not the main thread: left as it is
            old_term = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", UserWarning)
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except SpenseError as e:
            _print_error(str(e))
            raise typer.Exit(2) from None
        except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
            if disk_full(e):
                _disk_full(fn.__name__)
            if not out_of_memory(e):
                raise
            _print_error(f"out of memory: {first_line(e)} (try a smaller batch, prompt or model)")
            raise typer.Exit(1) from None
        except Exception as e:  # OSError, safetensors' SafetensorError
            if not disk_full(e):
                raise
            _disk_full(fn.__name__)
        except KeyboardInterrupt as e:  # its text, where a command says what was done before the interrupt
            _print_error(str(e) or (f"interrupted (rerun the same command: `spense {fn.__name__}` resumes where it "
                                    "stopped)" if fn.__name__ in RESUMABLE else "interrupted"))
            raise typer.Exit(143 if isinstance(e, Terminated) else 130) from None  # 128 + the signal, as shells do
        finally:
            warnings.showwarning = old
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)

    return wrapper


def _disk_full(command: str):
    _print_error("no space left on device: free some and rerun the same command" +
                 (f" (`spense {command}` resumes where it stopped)" if command in RESUMABLE else "") +
                 "; the output was not written and nothing older was replaced")
    raise typer.Exit(1) from None
