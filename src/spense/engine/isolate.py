"""The end-to-end benchmark with each variant in a process of its own (``spense bench`` on a GPU).

:func:`spense.engine.measure.run` measures every variant in one process. There a row can depend on the rows
before it: on an H100, Gemma-3-270M's Spense step at B = 1 took 0.765 ms in a process of its own and 0.800 /
0.879 ms after the dense rows in the same process (benchmarks/results/wgsd_2026-12-07 em, en, el), which turned
the bench's verdict on that model (1.034x over dense alone, 0.889x after it). :func:`run_isolated` measures the
copy bandwidth once, then each variant in a fresh ``python -m spense.engine.measure`` (as
``benchmarks/run_e2e.sh`` runs its stages), all against that one bandwidth, and sets ``speedup_vs_dense`` across
the processes as :func:`~spense.engine.measure.run` sets it within one
(:func:`~spense.engine.measure.set_speedups`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from spense.engine.measure import set_speedups
from spense.errors import DeviceError, InputError


def _child(args: list[str], what: str, log) -> None:
    """Run ``python -m spense.engine.measure args``, its output lines passed to ``log``; a failure raises with its
    last line, naming ``what`` it measured."""
    cmd = [sys.executable, "-m", "spense.engine.measure", *args]
    last = ""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as p:
        try:
            for line in p.stdout:
                line = line.rstrip("\n")
                if line.strip():
                    last = line
                    log(line)
        except BaseException:  # Ctrl-C, SIGTERM (the CLI's Terminated), a failing log: the child stops too
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
            raise
    if p.returncode:
        msg = f"the benchmark's process for {what} failed (exit {p.returncode}): {last.strip()[:300]}"
        if "OutOfMemoryError" in last or "out of memory" in last:  # the CLI's line for it (spense.cli.app)
            raise torch.OutOfMemoryError(msg)
        raise (InputError if "InputError" in last else DeviceError)(msg)


def run_isolated(model: str, variants: list[str], batches, prompt_len: int, gen: int, device: str,
                 compile: bool, check_tokens: int, axis: str, log=print) -> list[dict]:
    """The rows of :func:`spense.engine.measure.run` for ``variants`` x ``batches``, each variant measured in a
    process of its own (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="spense_bench_") as tmp:
        bw, out = str(Path(tmp) / "bw.json"), Path(tmp) / "rows.jsonl"
        _child(["--bw-only", "--bw", bw, "--device", device], "the copy bandwidth", lambda m: None)  # its JSON
        common = ["--model", model, "--batches", ",".join(str(b) for b in batches), "--prompt-len", str(prompt_len),
                  "--gen", str(gen), "--check-tokens", str(check_tokens), "--axis", axis, "--device", device,
                  "--bw", bw, "--out", str(out)] + ([] if compile else ["--no-compile"])
        for v in variants:
            _child(common + ["--variants", v], f"variant {v!r}", log)
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
        rec = json.loads(Path(bw).read_text())
    for r in rows:  # as one process's rows: the copy's detail, and one date for the report's header
        r.update({k: v for k, v in rec.items() if k.startswith("copy_tbps_")})
        r["date"] = rows[0]["date"]
    return set_speedups(rows)
