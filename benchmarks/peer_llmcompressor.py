"""The peer, side by side: llm-compressor's SparseGPT 2:4 and Wanda 2:4 on our windows, our evaluator.

Both peers see exactly the calibration windows spense uses (``spense.data.calibration_windows`` of
the tokenised calibration text, same ``nsamples``/``seqlen``/``seed``) and are scored with
``spense.evaluate.perplexity`` over ``spense.data.eval_windows`` of the evaluation text, so the
numbers are comparable with ``spense prune`` + ``spense eval`` at the same settings.

llm-compressor 0.14 pins ``transformers<=5.17``; install it in a venv of its own that still sees
spense and the CPU torch::

    python -m venv --system-site-packages .venv-peer
    .venv-peer/bin/pip install "llmcompressor>=0.14"        # keeps the installed torch 2.13 (CPU)
    PYTHONPATH=src .venv-peer/bin/python benchmarks/peer_llmcompressor.py --model smollm2-135m \\
        --nsamples 32 --seqlen 512 --eval-windows 40 --out benchmarks/results/peer_llmcompressor.json

The JSON records the versions, the exact settings, wall times, the measured sparsity (fraction of
zeros and whether every group of 4 along the input dimension holds >= 2 zeros) and the perplexity of
dense, SparseGPT 2:4 and Wanda 2:4.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from spense import data
from spense.evaluate import perplexity
from spense.models import resolve_model

METHODS = ("dense", "sparsegpt", "wanda")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _modifier(method: str, args):
    if method == "sparsegpt":
        from llmcompressor.modifiers.pruning import SparseGPTModifier

        return SparseGPTModifier(sparsity=0.5, mask_structure="2:4", block_size=args.block_size,
                                 dampening_frac=args.dampening_frac, targets=["Linear"], ignore=["lm_head"])
    from llmcompressor.modifiers.pruning import WandaPruningModifier

    return WandaPruningModifier(sparsity=0.5, mask_structure="2:4", targets=["Linear"], ignore=["lm_head"])


def sparsity_report(model) -> dict:
    """Zeros in every ``nn.Linear`` but ``lm_head``: overall fraction, and whether each group of 4
    consecutive input weights of every row holds at least 2 zeros (the 2:4 pattern)."""
    zeros = total = 0
    all_24 = True
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not name.endswith("lm_head"):
            w = mod.weight.detach()
            zeros += int((w == 0).sum())
            total += w.numel()
            if w.shape[1] % 4 == 0:
                z = (w.reshape(w.shape[0], -1, 4) == 0).sum(-1)
                all_24 = all_24 and bool((z >= 2).all())
    return {"zero_fraction": zeros / max(total, 1), "all_groups_2of4": all_24, "linear_params": total}


def load(model_dir: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
    m.config.use_cache = False
    return m.eval()


def run_peer(method: str, model, calib: torch.Tensor, args) -> float:
    """Prune ``model`` in place with llm-compressor's ``oneshot``; returns wall seconds."""
    from datasets import Dataset
    from llmcompressor import oneshot

    ds = Dataset.from_dict({"input_ids": calib.tolist(),
                            "attention_mask": torch.ones_like(calib).tolist()})
    t0 = time.perf_counter()
    oneshot(model=model, dataset=ds, recipe=_modifier(method, args), num_calibration_samples=len(calib),
            max_seq_length=calib.shape[1], shuffle_calibration_samples=False, pipeline=args.pipeline)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m", help="HF dir, .gguf or built-in name")
    ap.add_argument("--calib", default=None, help="calibration text (default: WikiText-2 valid.txt)")
    ap.add_argument("--text", default=None, help="evaluation text (default: WikiText-2 test.txt)")
    ap.add_argument("--nsamples", type=int, default=32)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-windows", type=int, default=40, help="first N windows of the test text")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--dampening-frac", type=float, default=0.01)
    ap.add_argument("--pipeline", default="sequential",
                    help="llm-compressor calibration pipeline (sequential = block by block, inputs of "
                         "block i+1 computed from the pruned block i)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method(s) {bad}; choose from {METHODS}")
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    dtype = getattr(torch, args.dtype)

    model_dir = resolve_model(args.model)
    tok = data.load_tokenizer(model_dir)
    calib_path = Path(args.calib) if args.calib else data.default_calib_path()
    eval_path = Path(args.text) if args.text else data.default_eval_path()
    calib_text, eval_text = data.read_text(calib_path), data.read_text(eval_path)
    calib = data.calibration_windows(data.tokenize(tok, calib_text), args.nsamples, args.seqlen, args.seed)
    ew = data.eval_windows(data.tokenize(tok, eval_text), args.seqlen, args.eval_windows)

    result = {
        "what": "llm-compressor SparseGPT/Wanda 2:4 vs dense, spense windows and evaluator",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "commit": _commit(),
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "versions": {p: _version(p) for p in ("llmcompressor", "compressed-tensors", "transformers",
                                               "torch", "datasets", "spense")} | {"python": platform.python_version()},
        "model": {"spec": args.model, "dir": str(model_dir)},
        "calib": {"path": str(calib_path), "sha256": data.text_fingerprint(calib_text),
                  "nsamples": args.nsamples, "seqlen": args.seqlen, "seed": args.seed},
        "eval": {"path": str(eval_path), "sha256": data.text_fingerprint(eval_text),
                 "windows": int(ew.shape[0]), "seqlen": int(ew.shape[1])},
        "settings": {"dtype": args.dtype, "block_size": args.block_size,
                     "dampening_frac": args.dampening_frac, "pipeline": args.pipeline},
        "results": {},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for method in methods:
        model = load(model_dir, dtype)
        seconds = 0.0 if method == "dense" else run_peer(method, model, calib, args)
        ppl = perplexity(model, ew, progress=False)
        result["results"][method] = {"perplexity": ppl["perplexity"], "nll": ppl["nll"],
                                     "prune_seconds": round(seconds, 2), "eval_seconds": round(ppl["seconds"], 2),
                                     **sparsity_report(model)}
        print(f"{method}: ppl {ppl['perplexity']:.3f} (prune {seconds:.1f} s)", flush=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
