"""Progress bars and logging, one source for the pipeline and the evaluator.

* :func:`progress` is a rich progress bar on a terminal's stderr; anywhere else (CI, nohup, a pipe)
  or when not ``enabled`` it is a disabled bar whose calls do nothing.
* :data:`logger` (``logging.getLogger("spense")``) gets one INFO record per pruned layer (loss and
  time), per block of the allocator's sensitivity pass and per evaluated window batch.  The library
  never installs handlers on its own; the CLI calls :func:`setup_cli_logging`, which prints those
  records on stderr when stderr is *not* a terminal (where no bar is shown), so CI logs and ``nohup``
  runs keep a per-layer trace.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("spense")

_HANDLER_NAME = "spense-cli"


def stderr_is_terminal() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def progress(enabled: bool = True):
    """A ``rich.progress.Progress`` on stderr (bar, n/total, elapsed, ETA), disabled unless ``enabled``
    and stderr is a terminal.  Use it as a context manager; a disabled bar accepts every call."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=True, disable=not (enabled and console.is_terminal),
    )


_QUIET = False  # set by setup_cli_logging: the command was asked for no bars (-q, --json)


def bars_wanted() -> bool:
    """Whether a progress bar drawn by another library (transformers' GGUF reader) may show: stderr is a
    terminal and the command was not asked to be quiet."""
    return not _QUIET and stderr_is_terminal()


def setup_cli_logging(quiet: bool = False) -> None:
    """CLI: send the ``spense`` logger's INFO records to stderr when stderr is not a terminal (and not
    ``quiet``); on a terminal the progress bars show the same.  Idempotent."""
    global _QUIET
    _QUIET = bool(quiet)
    for h in list(logger.handlers):
        if h.get_name() == _HANDLER_NAME:
            logger.removeHandler(h)
    if quiet or stderr_is_terminal():
        return
    h = logging.StreamHandler(sys.stderr)
    h.set_name(_HANDLER_NAME)
    h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
