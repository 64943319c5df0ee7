"""Perplexity, SparseGPT/Wanda protocol.

For every evaluation window ``ids`` (``seqlen`` tokens): ``logits = model(ids).logits``, the loss is
the float32 cross-entropy of ``logits[:, :-1]`` against ``ids[:, 1:]``.  NLL is summed over every
predicted token of every window and divided by their count; ``ppl = exp(mean NLL)``.  (SparseGPT
averages per-window means, which is the same thing since all windows have the same length.)
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from rich.table import Table
from rich.text import Text

from spense.data import check_model_token_ids
from spense.errors import InputError, NumericalError
from spense.log import logger, progress as progress_bar


def _window_nll(model, batch: torch.Tensor) -> torch.Tensor:
    """Summed float32 NLL of the next-token predictions of one batch of windows."""
    logits = model(batch, use_cache=False).logits
    shift = logits[:, :-1, :].float()
    target = batch[:, 1:]
    return F.cross_entropy(shift.reshape(-1, shift.shape[-1]), target.reshape(-1), reduction="sum")


def perplexity(
    model,
    windows: torch.Tensor,
    device: str | torch.device = "cpu",
    progress: bool = True,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Perplexity of ``model`` over ``windows`` (``(nw, seqlen)`` token ids).

    The model is put in eval mode but not moved: it must already sit on ``device`` (the windows are
    moved there batch by batch).  Returns ``{"perplexity", "nll", "tokens", "windows", "seconds"}``
    where ``nll`` is the mean NLL per predicted token.  Raises :class:`NumericalError` when a window
    produces NaN/Inf.
    """
    windows = torch.as_tensor(windows)
    if windows.dim() != 2 or windows.shape[0] == 0 or windows.shape[1] < 2:
        raise InputError(
            f"perplexity needs a (n_windows, seqlen >= 2) tensor of token ids, got {tuple(windows.shape)}"
        )
    check_model_token_ids(model, windows)
    if batch_size <= 0:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    nw, seqlen = windows.shape
    model.eval()
    total = 0.0
    t0 = time.perf_counter()
    with torch.inference_mode(), progress_bar(progress) as bar:
        task = bar.add_task("perplexity", total=nw)
        for start in range(0, nw, batch_size):
            batch = windows[start : start + batch_size].to(device=device, dtype=torch.long)
            nll = float(_window_nll(model, batch))
            if not math.isfinite(nll):
                raise NumericalError(
                    f"NaN/Inf loss on evaluation windows {start}..{start + batch.shape[0] - 1}; "
                    f"the model produces non-finite logits (try float32 or check the pruned weights)"
                )
            total += nll
            bar.advance(task, batch.shape[0])
            done = start + batch.shape[0]
            logger.info("perplexity: window %d/%d, running ppl %.4g, %.1f s", done, nw,
                        math.exp(total / (done * (seqlen - 1))), time.perf_counter() - t0)
    tokens = nw * (seqlen - 1)
    mean = total / tokens
    return {
        "perplexity": math.exp(mean),
        "nll": mean,
        "tokens": tokens,
        "windows": nw,
        "seconds": time.perf_counter() - t0,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.3f}" if abs(v) < 1e5 else f"{v:.3e}"
    return "" if v is None else str(v)


def ppl_table(rows: Iterable[dict[str, Any]], title: str | None = "Perplexity") -> Table:
    """A rich table of result rows (dicts); columns are the union of keys in first-seen order.

    ``method`` and ``perplexity`` come first when present.  Cells and title are plain text, never markup: a
    path such as ``ck[v2]`` is shown as it is.
    """
    rows = list(rows)
    cols: list[str] = []
    for key in ("method", "perplexity"):
        if any(key in r for r in rows):
            cols.append(key)
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    table = Table(title=None if title is None else Text(title))
    for c in cols:
        table.add_column(c, justify="left" if c == "method" else "right")
    for r in rows:
        table.add_row(*(Text(_fmt(r.get(c))) for c in cols))
    return table
