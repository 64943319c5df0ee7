"""``spense pack | eval | validate | inspect | demo``: the commands around a pruned checkpoint."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from spense import __version__
from spense.cli.app import _bars, _out_console, app, handle_errors, literal
from spense.cli.common import (MODEL_SOURCES, SEQUENTIAL_HELP, Sequential, check_min, check_source,
                               load_any, summary_rows)
from spense.errors import InputError
from spense.provenance import numerics_digest


@app.command()
@handle_errors
def pack(
    src: Path = typer.Argument(..., help="Spense checkpoint written by `spense prune` (dense with zeros)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the packed checkpoint."),
    fp8: bool = typer.Option(False, "--fp8", help="Store values and dense region as float8_e4m3fn with "
                             "per-output-channel scales (lossy)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output checkpoint."),
) -> None:
    """Pack a checkpoint: 2:4 values + metadata + dense region, loadable without unpacking.

    `spense.runtime.load_packed(OUT)` builds the model with SpenseLinear layers from the stored packed
    tensors; at dense ratio 0 the pruned weights take 9/16 of their BF16 dense-with-zeros size."""
    from spense.io import validate_checkpoint
    from spense.runtime.checkpoint import pack_checkpoint

    t0 = time.perf_counter()
    dst = pack_checkpoint(src, out, fp8=fp8, overwrite=overwrite)
    m = validate_checkpoint(dst)
    _warn_side_files(dst)  # copied from src as they were

    def size(d: Path) -> int:
        return sum(f.stat().st_size for f in Path(d).glob("*.safetensors"))

    _out_console().print(
        f"[green]packed[/green] {len(m['layers'])} layers: {size(src) / 1e6:.2f} MB -> {size(dst) / 1e6:.2f} MB "
        f"in {time.perf_counter() - t0:.1f} s -> {literal(out)}"  # as given, as prune prints it
    )


# --------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------
@app.command("eval")
@handle_errors
def eval_cmd(
    model: str = typer.Argument(..., help=f"A Spense checkpoint, or any model source: {MODEL_SOURCES}."),
    text: Optional[Path] = typer.Option(None, help="Evaluation text (.txt or folder). Default: WikiText-2 test.txt."),
    seqlen: int = typer.Option(2048, help="Tokens per window (clipped to the model's maximum)."),
    max_windows: Optional[int] = typer.Option(None, "--max-windows", help="Evaluate at most this many windows."),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu, cuda, cuda:N."),
    dtype: Optional[str] = typer.Option(None, help="Evaluation dtype (default float32; a packed checkpoint on a "
                                        "GPU: its stored dtype, which its kernels take)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (perplexity, nll, tokens, windows, seconds)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Perplexity of a model on a text (non-overlapping windows, SparseGPT/Wanda protocol)."""
    from spense import data
    from spense.evaluate import perplexity, ppl_table
    from spense.hf import clip_seqlen, parse_dtype, resolve_device

    check_min(seqlen=(seqlen, 2), max_windows=(max_windows, 1))  # a window predicts its tokens after the first
    cdtype = parse_dtype(dtype)
    dev = resolve_device(device)
    text_path = text if text is not None else data.default_eval_path()
    raw = data.read_text(text_path)
    lm, model_dir = load_any(model, dev, cdtype)
    tok = data.load_tokenizer(model_dir)
    sl = clip_seqlen(lm.config, seqlen)
    windows = data.eval_windows(data.tokenize(tok, raw), sl, max_windows, bos=data.bos_id(tok))
    res = perplexity(lm, windows, dev, progress=_bars(quiet or as_json))
    res = {"model": str(model), "text": str(text_path), "seqlen": sl, **res}
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        _out_console().print(ppl_table([res], title="Perplexity"))


# --------------------------------------------------------------------------------------------------
# validate / inspect
# --------------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def validate(checkpoint: Path = typer.Argument(..., help="Spense checkpoint directory.")) -> None:
    """Check a Spense checkpoint: manifest, SHA-256 of every tensor, and the 2:4 pattern of every layer."""
    import warnings

    from spense import data, io

    m, rows = io.check_checkpoint(checkpoint, progress=_bars(False))
    s = summary_rows(rows)
    _out_console().print(
        f"[green]OK[/green]: {s['layers']} layers, {len(m['tensors'])} tensors verified, {_kind(m)}, "
        f"method {literal(m.get('method', '?'))}, density {s['density']:.4f} ({literal(checkpoint)})"
    )
    if not any((Path(checkpoint) / f).is_file() for f in data.TOKENIZER_FILES):
        warnings.warn(f"{checkpoint} has no tokenizer ({', '.join(data.TOKENIZER_FILES)}): `spense eval` and "
                      "`spense generate` need one; copy it from the source model")
    _warn_side_files(checkpoint)


def _warn_side_files(folder: Path) -> None:
    """A warning for each side file of ``folder`` that is not valid JSON (the manifest does not cover them)."""
    import warnings

    from spense.side_files import side_file_problems

    for problem in side_file_problems(folder):
        warnings.warn(f"{problem}; `spense eval` and `spense generate` may fail or misbehave: copy it again from "
                      "the source model")


def _kind(m: dict) -> str:
    """How a checkpoint stores its pruned layers, in a few words."""
    if not m.get("packed"):
        return "dense with zeros"
    return "packed, FP8 (e4m3)" if m.get("packed_fp8") else "packed"


@app.command()
@handle_errors
def inspect(
    checkpoint: Path = typer.Argument(..., help="Spense checkpoint directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the per-layer rows as JSON."),
) -> None:
    """Per-layer table of a Spense checkpoint (validates it first)."""
    import os

    from rich import box
    from rich.table import Table
    from rich.text import Text

    from spense import io

    m, rows = io.check_checkpoint(checkpoint, progress=_bars(False))
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    common = os.path.commonprefix([r["name"] for r in rows]) if len(rows) > 1 else ""
    prefix = common[: common.rfind(".") + 1]  # whole name parts: "model.layers.", never "model.layers.1"
    strategies = {str(r.get("strategy") or r.get("method") or "") for r in rows}
    method = str(m.get("method", "?"))
    title = f"{checkpoint}: {len(rows)} layers, {_kind(m)}, method {method}"
    if len(strategies) == 1 and strategies != {method}:
        title += f" ({strategies.pop() or '-'})"
    if rows and all(r["dense_ratio"] == 1.0 for r in rows) and any(r["density"] < 1.0 for r in rows):
        title += ", no 2:4 region: the zeros lie unstructured in the dense region"
    t = Table(title=Text(title + (f"; names below {prefix}" if prefix else "")), box=box.SIMPLE_HEAD,
              show_edge=False, pad_edge=False, collapse_padding=True)
    cols = ["name", "shape", "axis", "dense n", "dense ratio", "density", "loss"]
    if len(strategies) > 1:
        cols.append("strategy")
    for c in cols:
        left = c in ("name", "axis", "strategy")
        t.add_column(c, justify="left" if left else "right", no_wrap=c != "name", overflow="fold")
    for r in rows:
        loss = r.get("loss")
        cells = [r["name"][len(prefix):], "x".join(map(str, r["shape"])), r["axis"], str(r["n_dense"]),
                 f"{r['dense_ratio']:.3f}", f"{r['density']:.4f}", "" if loss is None else f"{loss:.4g}",
                 str(r.get("strategy") or r.get("method") or "")]
        t.add_row(*(Text(c) for c in cells[: len(cols)]))
    _out_console().print(t)


# --------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------
def demo_methods(seed: int = 0, block: int = 64, quick: bool = False) -> list[tuple[str, Any]]:
    """The demo's methods, in order: ``(label, PruneConfig or None for the dense model)``; ``quick``:
    dense, SparseGPT 2:4 and Spense salience-cols (the rows of :data:`QUICK_METHODS`)."""
    from spense.methods import PruneConfig

    def c(**kw):
        return PruneConfig(seed=seed, block=block, **kw)

    rows = [
        ("dense", None),
        ("magnitude 2:4", c(method="magnitude", dense_ratio=0.0)),
        ("wanda 2:4", c(method="wanda", dense_ratio=0.0)),
        ("sparsegpt 2:4", c(method="sparsegpt", dense_ratio=0.0)),
        ("unstructured 62.5%", c(method="unstructured", dense_ratio=0.25)),
        ("spense loss-rows", c(method="spense", dense_ratio=0.25, strategy="loss-rows")),
        ("spense salience-cols", c(method="spense", dense_ratio=0.25, strategy="salience-cols")),
        ("spense random cols", c(method="spense", dense_ratio=0.25, strategy="random", axis="cols")),
        ("spense random rows", c(method="spense", dense_ratio=0.25, strategy="random", axis="rows")),
        ("spense first cols", c(method="spense", dense_ratio=0.25, strategy="first", axis="cols")),
    ]
    return [m for m in rows if m[0] in QUICK_METHODS] if quick else rows


QUICK_METHODS = ("dense", "sparsegpt 2:4", "spense salience-cols")


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _check_demo_json(path: Path, model_dir: Path, calib: Path, text: Path, out_dir: Path | None) -> None:
    """Refuse a ``demo --json`` path that is one of the demo's inputs (the texts, a file of the model), one inside
    ``--out-dir`` (where the checkpoints go), or an existing file that an earlier ``spense demo --json`` did not
    write: the results never replace a source or a checkpoint's file."""
    p = path.expanduser().resolve()
    m = Path(model_dir).expanduser().resolve()
    if p in (calib.expanduser().resolve(), text.expanduser().resolve()) or p == m or m in p.parents:
        raise InputError(f"--json {path} is an input of this demo (model, --calib or --text); choose another file")
    o = Path(out_dir).expanduser().resolve() if out_dir is not None else None
    if o is not None and (p == o or o in p.parents):
        raise InputError(f"--json {path} is inside --out-dir {out_dir}, where the checkpoints are written; "
                         "choose a file outside it")
    if p.is_file():
        try:
            earlier = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and "results" in earlier and "command" in earlier):
            raise InputError(f"--json {path} exists and is not an earlier `spense demo --json` file; "
                             "remove it or choose another file")


def _demo_cache(model_dir, calib_text, text_path, quick, methods, calib_w, eval_w, block, seed, dev, sequential):
    """The demo's finished methods (:class:`spense.resume.RowCache`) under ``$SPENSE_CACHE/demo/``, keyed by all that
    its numbers depend on: the model's files (names, sizes, modification times), the texts and windows, the methods,
    the options, the device and the library's and torch's versions."""
    import torch

    from spense.data import text_fingerprint
    from spense.io import tensor_sha256
    from spense.models import cache_dir
    from spense.resume import RowCache, file_stamps, fingerprint

    src = Path(model_dir)
    run = {"model": str(src.resolve()), "files": file_stamps(src),
           "calib": text_fingerprint(calib_text), "text": str(Path(text_path).resolve()),
           "windows": [tensor_sha256(w) for w in (calib_w, eval_w)],
           "methods": [[label, cfg.to_dict() if cfg is not None else None] for label, cfg in methods],
           "quick": quick, "block": block, "seed": seed, "device": str(dev), "sequential": sequential,
           "spense": __version__, "torch": torch.__version__}
    fp = fingerprint(run)
    return RowCache(cache_dir() / "demo" / f"{fp[:16]}.json", fp)


DEMO_DEFAULTS = {"nsamples": 4, "seqlen": 256, "max_eval_windows": 16}
DEMO_QUICK = {"nsamples": 4, "seqlen": 128, "max_eval_windows": 8}


def _warn_empty_dense_regions(model, methods, block: int) -> None:
    """A dense budget that rounds to no whole block of ``block`` on any decoder linear, rows or columns (a small
    model, a large ``--block``), leaves every spense row equal to sparsegpt 2:4: said before the run."""
    import warnings

    import torch

    from spense.format import dense_count

    ratios = {c.dense_ratio for _, c in methods if c is not None and c.method == "spense" and c.dense_ratio > 0}
    dims = [d for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear) and ".layers." in
            f".{name}" for d in (mod.in_features, mod.out_features)]
    for r in sorted(ratios):
        if dims and all(dense_count(d, r, block) == 0 for d in dims):
            warnings.warn(f"a dense ratio of {r:g} rounds to no whole block of --block {block} on any layer (the "
                          f"largest has {max(dims)} rows or columns): the spense rows will equal sparsegpt 2:4; pass "
                          "a smaller --block")


@app.command()
@handle_errors
def demo(
    quick: bool = typer.Option(False, "--quick", help="CI settings: dense, SparseGPT 2:4 and Spense "
                               "salience-cols only, few samples/windows."),
    model: Optional[str] = typer.Option(None, help=f"Model (default smollm2-135m): {MODEL_SOURCES}."),
    calib: Optional[Path] = typer.Option(None, help="Calibration text (default: WikiText-2 valid.txt)."),
    text: Optional[Path] = typer.Option(None, help="Evaluation text (default: WikiText-2 test.txt)."),
    nsamples: Optional[int] = typer.Option(None, help=f"Calibration windows (default {DEMO_DEFAULTS['nsamples']}, "
                                           f"--quick {DEMO_QUICK['nsamples']})."),
    seqlen: Optional[int] = typer.Option(None, help=f"Window length (default {DEMO_DEFAULTS['seqlen']}, "
                                         f"--quick {DEMO_QUICK['seqlen']})."),
    max_eval_windows: Optional[int] = typer.Option(None, "--max-eval-windows", help="Evaluation windows (default "
                                                   f"{DEMO_DEFAULTS['max_eval_windows']}, --quick "
                                                   f"{DEMO_QUICK['max_eval_windows']})."),
    block: int = typer.Option(64, help="Dense region granularity for the spense methods (a multiple of 4; the "
                              "dense ratio rounds to whole blocks)."),
    seed: int = typer.Option(0, help="Seed for calibration windows and random strategies."),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu, cuda, cuda:N."),
    sequential: Sequential = typer.Option(Sequential.true, "--sequential", help=SEQUENTIAL_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON to this file."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Also save every pruned model as a Spense "
                                           "checkpoint in DIR/<method> (replaced if present)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Prune a model (default SmolLM2-135M) with every method and print a perplexity table.

    Methods: dense, magnitude / wanda / sparsegpt 2:4, unstructured at 62.5 % density, and spense at
    25 % dense (loss-rows, salience-cols, random cols, random rows, first cols). Pruning happens in
    memory on a fresh copy of the dense model per method. Columns: perplexity, density of the pruned
    linears, layer_loss = summed reconstruction loss ‖(W-Ŵ)X‖²/n of all pruned layers, loss_vs_24 =
    that sum over the sparsegpt 2:4 one, and times.
    """
    import torch

    from spense import data, io
    from spense.atomic import atomic_write_bytes
    from spense.evaluate import perplexity, ppl_table
    from spense.hf import clip_seqlen, load_model, resolve_device, source_dtype
    from spense.pipeline import build_manifest, fresh_copy, linear_density, prune_loaded

    t_all = time.perf_counter()
    base = DEMO_QUICK if quick else DEMO_DEFAULTS
    nsamples = nsamples if nsamples is not None else base["nsamples"]
    seqlen = seqlen if seqlen is not None else base["seqlen"]
    max_eval_windows = max_eval_windows if max_eval_windows is not None else base["max_eval_windows"]
    check_min(nsamples=(nsamples, 1), seqlen=(seqlen, 2), max_eval_windows=(max_eval_windows, 1))
    methods = demo_methods(seed, block, quick)
    for _, cfg in methods:  # --block and --seed through each method's own check, before the model is looked for
        if cfg is not None:
            cfg.validate()
    dev = resolve_device(device)
    from spense.models import resolve_model

    model = model if model is not None else data.default_model()
    model_dir = resolve_model(model)
    check_source(model_dir, "demo")
    calib_path = calib if calib is not None else data.default_calib_path()
    text_path = text if text is not None else data.default_eval_path()
    if json_path is not None:  # outputs checked before the work, not after
        io.check_writable(json_path, "--json", kind="file")
        _check_demo_json(Path(json_path), model_dir, Path(calib_path), Path(text_path), out_dir)
    if out_dir is not None:
        io.check_writable(out_dir, "--out-dir")
        for label, cfg in methods:
            if cfg is not None:
                io.check_out_dir(model_dir, Path(out_dir) / _slug(label), True, flag="--out-dir")

    tok = data.load_tokenizer(model_dir)
    dense = load_model(model_dir)
    _warn_empty_dense_regions(dense, methods, block)
    seqlen = clip_seqlen(dense.config, seqlen)
    calib_text = data.read_text(calib_path)
    bos = data.bos_id(tok)  # each window opens with <bos> where the model was trained so (Gemma), as prune and eval do
    calib_w = data.calibration_windows(data.tokenize(tok, calib_text), nsamples, seqlen, seed, bos=bos)
    eval_w = data.eval_windows(data.tokenize(tok, data.read_text(text_path)), seqlen, max_eval_windows, bos=bos)
    n_params = sum(p.numel() for p in dense.parameters())
    con = _out_console()
    con.print(f"demo: {literal(model)} ({n_params / 1e6:.1f}M params), {len(methods)} methods, "
              f"calibration {nsamples}x{seqlen} tokens, evaluation {eval_w.shape[0]}x{seqlen} tokens, "
              f"device {dev}")

    cache = _demo_cache(model_dir, calib_text, text_path, quick, methods, calib_w, eval_w, block, seed, dev,
                        sequential.value)
    if cache.rows:
        con.print(f"resuming: {len(cache.rows)} of {len(methods)} methods come from an interrupted run "
                  f"({literal(cache.path)})")
    rows, resumed = [], []
    for label, cfg in methods:
        row = cache.rows.get(label)
        kept = out_dir is None or cfg is None or (Path(out_dir) / _slug(label) / "spense.json").is_file()
        if row is not None and kept:
            rows.append(row)
            resumed.append(row)
            if not quiet:
                con.print(f"  {label}: perplexity {row['perplexity']:.3f} (from the interrupted run)")
            continue
        t0 = time.perf_counter()
        m = dense if cfg is None else fresh_copy(dense)
        records: dict = {}
        if cfg is not None:
            records = prune_loaded(m, calib_w, cfg, dev, progress=_bars(quiet), sequential=sequential.value)
        t_prune = time.perf_counter() - t0
        m.to(dev)
        res = perplexity(m, eval_w, dev, progress=_bars(quiet))
        m.to("cpu")
        loss = sum(r["loss"] for r in records.values()) if records else None
        row = {"method": label, "perplexity": res["perplexity"], "density": linear_density(m, block),
               "layer_loss": loss, "loss_vs_24": None, "prune_s": t_prune, "eval_s": res["seconds"],
               "wall_s": time.perf_counter() - t0}
        rows.append(row)
        if not quiet:
            con.print(f"  {label}: perplexity {res['perplexity']:.3f} ({row['wall_s']:.1f} s)")
        if out_dir is not None and cfg is not None:
            man = build_manifest(cfg, records, model_dir, calib_path, data.text_fingerprint(calib_text),
                                 calib_w, seed, t_prune, sequential=sequential.value)
            m.to(source_dtype(model_dir))
            io.save_checkpoint(m, model_dir, Path(out_dir) / _slug(label), man, overwrite=True)
        cache.put(label, row)  # after its checkpoint: a resumed run finds both
        if cfg is not None:
            del m
    loss_24 = next((r["layer_loss"] for r, (_, c) in zip(rows, methods) if c and c.method == "sparsegpt"), None)
    for r in rows:
        if loss_24 and r["layer_loss"] is not None:
            r["loss_vs_24"] = r["layer_loss"] / loss_24
    total = time.perf_counter() - t_all
    earlier = sum(r["wall_s"] for r in resumed)  # the methods' own times in the interrupted run
    took = f"total {total + earlier:.1f} s" + (f" ({earlier:.1f} s of it in the interrupted run)" if resumed else "")
    con.print(ppl_table(rows, title=f"spense demo: {model}, {took}"))
    if json_path is not None:
        payload = {
            "model": model if not Path(model).exists() else os.path.relpath(model), "calib": os.path.relpath(calib_path),
            "text": os.path.relpath(text_path),
            "nsamples": nsamples, "seqlen": seqlen, "eval_windows": int(eval_w.shape[0]), "seed": seed,
            "block": block, "device": str(dev), "quick": quick, "sequential": sequential.value, "torch": torch.__version__,
            "spense": __version__, "cpu_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "numerics": numerics_digest(),
            "command": " ".join(["spense", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": rows, "seconds": total + earlier,
            "resumed": [r["method"] for r in resumed], "resumed_seconds": earlier,
        }
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(json_path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
        con.print(f"results written to {literal(json_path)}")
    cache.done()
