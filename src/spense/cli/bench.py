"""``spense bench MODEL``: end-to-end decode, dense vs Spense, with the engine; table + JSON."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from spense.cli.app import app, handle_errors
from spense.errors import InputError


def _list(s: str, conv, what: str) -> list:
    try:
        vals = [conv(x) for x in s.split(",") if x.strip()]
    except ValueError as e:
        raise InputError(f"{what}: cannot parse {s!r} ({e})") from e
    if not vals:
        raise InputError(f"{what}: empty list")
    return vals


@app.command("bench")
def bench_command(
    model: str = typer.Argument(..., help="built-in shape (qwen3-8b, qwen3-32b, qwen3-32b[:16], qwen3-tiny), "
                                          "HF dir or Spense checkpoint"),
    batch: str = typer.Option("1,8", "--batch", help="comma-separated batch sizes"),
    dense_ratio: str = typer.Option("0.25", "--dense-ratio", help="Spense dense ratios (0 = pure 2:4)"),
    fp8: bool = typer.Option(False, "--fp8", help="FP8 Spense weights"),
    whole: str = typer.Option("", "--whole", help="also whole-layer variants at these dense shares: the first "
                              "share x L decoder layers dense (cuBLAS), 2:4 elsewhere (e.g. 0.25)"),
    prompt_len: int = typer.Option(512, "--prompt-len"),
    gen: int = typer.Option(64, "--gen"),
    axis: str = typer.Option("cols", "--axis", help="dense region axis: cols or rows"),
    compile: bool = typer.Option(True, "--compile/--no-compile"),
    check_tokens: int = typer.Option(32, "--check-tokens"),
    device: str = typer.Option("auto", "--device"),
    out: Optional[Path] = typer.Option(None, "--out", help="write NAME.json/.md/.png here"),
    name: str = typer.Option("e2e_engine", "--name"),
) -> None:
    """End-to-end decode benchmark with the engine (static cache, compiled step, CUDA graphs)."""

    @handle_errors
    def _run() -> None:
        from spense import report
        from spense.engine import measure
        from spense.hf import resolve_device

        if gen < 5 or prompt_len < 1:
            raise InputError("need --gen >= 5 and --prompt-len >= 1")
        ratios = _list(dense_ratio, float, "--dense-ratio")
        sfx = "-fp8" if fp8 else ""
        variants = (["dense" + sfx] + [f"spense{r:g}{sfx}" for r in ratios]
                    + [f"whole{w:g}{sfx}" for w in (_list(whole, float, "--whole") if whole else [])])
        rows = measure.run(model, _list(batch, int, "--batch"), ratios, variants=variants,
                           fp8=fp8, prompt_len=prompt_len, gen=gen, device=str(resolve_device(device)),
                           compile=compile, check_tokens=check_tokens, axis=axis,
                           log=lambda m: print(m, file=sys.stderr))
        cmd = "spense bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        for r in rows:
            r["command"] = cmd
        if out is not None:
            report.write(rows, out, name)
        print(report.markdown(rows))

    _run()
