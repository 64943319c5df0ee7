"""``spense bench MODEL``: end-to-end decode, dense vs Spense, with the engine; table + JSON."""

from __future__ import annotations

import json
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from spense.cli.app import app, handle_errors
from spense.errors import InputError
from spense.models import BUILTIN_MODELS


def _list(s: str, conv, what: str) -> list:
    """The comma-separated values of ``s``: none empty (``1,,2``), none twice."""
    items = [x.strip() for x in s.split(",")]
    if not any(items):
        raise InputError(f"{what}: empty list")
    if not all(items):
        raise InputError(f"{what}: empty item in {s!r}; give comma-separated values such as 1,8")
    try:
        vals = [conv(x) for x in items]
    except ValueError as e:
        raise InputError(f"{what}: cannot parse {s!r} ({e})") from e
    twice = sorted({str(v) for v in vals if vals.count(v) > 1})
    if twice:
        raise InputError(f"{what}: {', '.join(twice)} listed twice in {s!r}")
    return vals


def _shares(s: str, what: str, lo_open: bool) -> list[float]:
    """The values of ``s`` (comma-separated), each in ``(0, 1]`` (``lo_open``) or ``[0, 1]``, short enough to
    name a variant (``spense0.25``, ``whole0.5``)."""
    vals = _list(s, float, what)
    for v in vals:
        if not ((0 < v <= 1) if lo_open else (0 <= v <= 1)):
            raise InputError(f"{what}: {v:g} is not in {'(0, 1]' if lo_open else '[0, 1]'}")
        if not re.fullmatch(r"[0-9.]+", f"{v:g}"):
            raise InputError(f"{what}: {v:g} is too small (use a decimal such as 0.01)")
    return vals


SHAPES = "qwen3-8b, qwen3-32b, qwen3-32b[:16], qwen3-tiny"


def check_model(model: str, cache: int = 0) -> None:
    """Refuse up front what bench cannot take: a Spense checkpoint (bench prunes a dense model itself), a
    built-in shape with more layers than it has or fewer positions than the ``cache`` the run needs, a name
    that is neither a path, a shape nor a built-in model."""
    from spense.engine.load import BUILTIN_SHAPES, parse_shape
    from spense.io import MANIFEST

    p = Path(model).expanduser()
    if p.exists():
        if (p / MANIFEST).is_file():
            raise InputError(f"{model} is a Spense checkpoint; spense bench prunes a dense model itself: pass a "
                             f"built-in shape ({SHAPES}) or a Hugging Face model folder (run a checkpoint with "
                             f"`spense generate`)")
        return
    shape = parse_shape(model)
    if shape is not None:
        name, n = shape
        full = BUILTIN_SHAPES[name]["n_layer"]
        if n is not None and not 1 <= n <= full:
            raise InputError(f"{model}: {name} has {full} layers; cannot take the first {n}")
        if cache > BUILTIN_SHAPES[name]["max_positions"]:
            raise InputError(f"--prompt-len + --gen need a cache of {cache} tokens; {name} has "
                             f"{BUILTIN_SHAPES[name]['max_positions']} positions")
        return
    m = re.match(r"(?P<base>[^\[:]+)\[?:", model.strip())
    base = m.group("base") if m else ""
    if m and base.lower() in BUILTIN_SHAPES:  # a built-in shape with a layer count written wrong
        raise InputError(f"{model}: write the layer count as {base}[:L], L a whole number from 1 to "
                         f"{BUILTIN_SHAPES[base.lower()]['n_layer']}")
    if m and base in BUILTIN_MODELS:
        raise InputError(f"{model}: [:L] takes the first layers of a built-in shape ({SHAPES}), not of the model "
                         f"{base}")
    if model not in BUILTIN_MODELS:
        raise InputError(f"model {model!r} not found: spense bench takes a built-in shape ({SHAPES}; "
                         f"NAME[:L] = its first L layers), a built-in model ({', '.join(BUILTIN_MODELS)}), a "
                         "Hugging Face model folder or a .gguf file")


def check_host_memory(model: str, available: int | None = None) -> None:
    """On the CPU a built-in shape is built in float32: refuse one whose weights alone would not fit in the
    host's available memory (``available`` bytes; default: the system's MemAvailable, unchecked if unknown)."""
    from spense.engine.load import BUILTIN_SHAPES, parse_shape
    from spense.hostmem import mem_available

    shape = parse_shape(model) if not Path(model).expanduser().exists() else None
    if shape is None:
        return
    a = BUILTIN_SHAPES[shape[0]]
    layers = shape[1] or a["n_layer"]
    hd, d = a["head_dim"], a["dim"]
    per_layer = d * hd * (2 * a["n_head"] + 2 * a["n_kv_head"]) + 3 * d * a["intermediate_size"]
    need = 4 * (layers * per_layer + 2 * a["vocab_size"] * d)
    available = mem_available() if available is None else available
    if available is not None and need > available:
        raise InputError(f"{model} on the CPU needs {need / 1e9:.1f} GB for its float32 weights alone; "
                         f"{available / 1e9:.1f} GB are available. Run it on a CUDA GPU, or take fewer layers "
                         f"({shape[0]}[:L]) or qwen3-tiny")


def check_options(model: str, batch: str, dense_ratio: str, whole: str, axis: str, gen: int, prompt_len: int,
                  out: Optional[Path], name: str = "e2e_engine",
                  check_tokens: int = 32) -> tuple[list[int], list[float], list[float]]:
    """Every option checked before any model is built: ``(batch sizes, dense ratios, whole-layer shares)``."""
    if gen < 5:
        raise InputError(f"--gen must be >= 5 (the step is timed over the tokens after the first few), got {gen}")
    if prompt_len < 1:
        raise InputError(f"--prompt-len must be >= 1, got {prompt_len}")
    if check_tokens < 0:
        raise InputError(f"--check-tokens must be >= 0 (0: no token check), got {check_tokens}")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise InputError(f"--name {name!r}: give a plain file name stem (letters, digits, '_', '.', '-'; no "
                         "folder), the report's files are NAME.json/.md/.png inside --out")
    batches = _list(batch, int, "--batch")
    if min(batches) < 1:
        raise InputError(f"--batch: batch sizes must be >= 1 (got {min(batches)})")
    ratios = _shares(dense_ratio, "--dense-ratio", lo_open=False)
    shares = _shares(whole, "--whole", lo_open=True) if whole else []
    if axis not in ("cols", "rows"):
        raise InputError(f"--axis: {axis!r} is not cols or rows")
    from spense.engine.measure import bench_cache

    check_model(model, bench_cache(prompt_len, gen))
    if out is not None:  # report.write puts NAME.json/.md/.png inside --out
        from spense.io import check_writable

        check_writable(out, "--out", inside=True)
        check_report_files(out, name)
    return batches, ratios, shares


def check_report_files(out: Path, name: str) -> None:
    """Refuse to replace ``NAME.json/.md/.png`` in ``out`` unless they are an earlier ``spense bench`` report's: its
    ``NAME.json`` a list of rows, each with a ``variant`` and a ``step_ms`` (then ``.md`` and ``.png`` are its)."""
    j = Path(out).expanduser() / f"{name}.json"
    if j.exists() or j.is_symlink():
        try:
            rows = json.loads(j.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            rows = None
        if isinstance(rows, list) and all(isinstance(r, dict) and {"variant", "step_ms"} <= r.keys() for r in rows):
            return
        bad = j
    else:
        bad = next((p for p in (j.with_suffix(".md"), j.with_suffix(".png")) if p.exists() or p.is_symlink()), None)
        if bad is None:
            return
    raise InputError(f"--out {out}: {bad.name} exists and is not an earlier `spense bench` report's; remove it, or "
                     "choose another --name or --out")


@app.command("bench")
def bench_command(
    model: str = typer.Argument(..., help=f"built-in shape with random weights ({SHAPES}; NAME[:L]: its first L "
                                          "layers), built-in model (" + ", ".join(BUILTIN_MODELS) + "), HF model "
                                          "dir or .gguf (not a Spense checkpoint: bench prunes it)"),
    batch: str = typer.Option("1,8", "--batch", help="comma-separated batch sizes"),
    dense_ratio: str = typer.Option("0.25", "--dense-ratio", help="comma-separated Spense dense ratios, e.g. "
                                    "0,0.25,0.5 (0 = pure 2:4)"),
    fp8: bool = typer.Option(False, "--fp8", help="FP8 Spense weights"),
    whole: str = typer.Option("", "--whole", help="also whole-layer variants at these dense shares: the first "
                              "share x L decoder layers dense (cuBLAS or our streaming kernel), 2:4 elsewhere "
                              "(e.g. 0.25)"),
    prompt_len: int = typer.Option(512, "--prompt-len", help="prompt tokens, prefilled before the timed steps"),
    gen: int = typer.Option(64, "--gen", help="decode steps a run (>= 5; the first ones warm up)"),
    axis: str = typer.Option("cols", "--axis", help="dense region axis: cols or rows"),
    compile: bool = typer.Option(True, "--compile/--no-compile", help="compile the decode step (torch.compile, "
                                 "in CUDA graphs; --no-compile: the eager step in CUDA graphs); on a CUDA GPU only, "
                                 "the CPU runs eager"),
    check_tokens: int = typer.Option(32, "--check-tokens", help="greedy tokens compared with the reference "
                                     "backend at the first batch size (0: none)"),
    device: str = typer.Option("auto", "--device", help="auto (cuda if available), cuda, cuda:N, or cpu (the "
                               "reference backend, eager: for trying the command, not for timings)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write NAME.json/.md/.png here"),
    name: str = typer.Option("e2e_engine", "--name", help="file name stem of the report in --out"),
    isolate: Optional[bool] = typer.Option(None, "--isolate/--same-process", help="each variant in a process of "
                                           "its own (default on a CUDA GPU: a row measured after others in one "
                                           "process can run slower) or all in this one"),
    repeat: int = typer.Option(1, "--repeat", help="run each variant in this many processes, in rounds, and report "
                               "the median step and the spread (implies --isolate; for short steps, whose processes "
                               "can differ by a tenth or more)"),
) -> None:
    """End-to-end decode benchmark with the engine (static cache, compiled step, CUDA graphs; needs a CUDA GPU
    for timings that mean anything)."""

    @handle_errors
    def _run() -> None:
        batches, ratios, shares = check_options(model, batch, dense_ratio, whole, axis, gen, prompt_len, out, name,
                                                  check_tokens)
        if repeat < 1:
            raise InputError(f"--repeat must be >= 1, got {repeat}")
        if repeat > 1 and isolate is False:
            raise InputError(f"--repeat {repeat} runs each variant in processes of its own; it cannot go with "
                             "--same-process")
        from spense import report
        from spense.engine import measure
        from spense.hf import resolve_device

        dev = resolve_device(device)
        if dev.type != "cuda":
            check_host_memory(model)
            warnings.warn(f"spense bench on {dev.type}: the reference backend, eager, no CUDA graphs; its timings "
                          "say nothing about a GPU's (run it on a CUDA GPU for those)")
        sfx = "-fp8" if fp8 else ""
        variants = (["dense" + sfx] + [f"spense{r:g}{sfx}" for r in ratios]
                    + [f"whole{w:g}{sfx}" for w in shares])
        log = lambda m: print(m, file=sys.stderr)  # noqa: E731
        if (dev.type == "cuda" or repeat > 1) if isolate is None else isolate:
            from spense.engine.isolate import run_isolated

            rows = run_isolated(model, variants, batches, prompt_len, gen, str(dev), compile, check_tokens, axis,
                                log=log, repeat=repeat)
        else:
            rows = measure.run(model, batches, ratios, variants=variants, fp8=fp8, prompt_len=prompt_len, gen=gen,
                               device=str(dev), compile=compile, check_tokens=check_tokens, axis=axis, log=log)
        cmd = "spense bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        for r in rows:
            r["command"] = cmd
        if out is not None:
            report.write(rows, out, name)
        print(report.markdown(rows))

    _run()
