"""The end-to-end benchmark with each variant in a process of its own (``spense bench`` on a GPU).

:func:`spense.engine.measure.run` measures every variant in one process. There a row can depend on the rows
before it: on an H100, Gemma-3-270M's Spense step at B = 1 took 0.765 ms in a process of its own and 0.800 /
0.879 ms after the dense rows in the same process (benchmarks/results/wgsd_2026-12-07 em, en, el), which turned
the bench's verdict on that model (1.034x over dense alone, 0.889x after it). :func:`run_isolated` measures the
copy bandwidth once, then each variant in a fresh ``python -m spense.engine.measure`` (as
``benchmarks/run_e2e.sh`` runs its stages), all against that one bandwidth, and sets ``speedup_vs_dense`` across
the processes as :func:`~spense.engine.measure.run` sets it within one
(:func:`~spense.engine.measure.set_speedups`).

Processes of the same variant differ too where the step is short: on an H100, Gemma-3-270M's Spense step at B = 1
and 4,096 prompt tokens took 0.663, 0.670, 0.727 and 0.816 ms in four processes (results wgsd_2026-12-07 ep, eq).
With ``repeat`` = R every variant runs in R processes, in rounds (each round all variants in order), and
:func:`merge_rounds` keeps the median step of each row and the spread of its rounds.
"""

from __future__ import annotations

import json
import statistics
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


def merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One row per (variant, batch) of ``rounds`` (the same rows measured R times; a row missing from a round is
    merged from the rounds that have it), in the order first met: the first such row (the first round's holds the
    token check) where ``step_ms`` (m), ``step_sync_ms``, ``prefill_ms`` and ``host_ms`` are the median over the
    rounds, ``peak_mem_bytes``, ``setup_peak_bytes`` and ``held_mem_bytes`` the most of any; ``step_ms_runs``,
    ``step_ms_windows_runs``, ``dense_kinds_runs``, ``step_sync_ms_runs`` and ``host_ms_runs`` each round's, in round
    order; ``step_ms_spread`` = (max - min) / m of the steps; and ``decode_tok_s`` = 1000 B / m and ``x_floor`` =
    m / ``floor_ms`` following m. A single round comes back as it is."""
    if len(rounds) == 1:
        return rounds[0]
    by: dict[tuple, list[dict]] = {}
    for rows in rounds:
        for r in rows:
            by.setdefault((r["variant"], r["batch"]), []).append(r)
    out = []
    for rs in by.values():
        row = dict(rs[0])
        for k, pick in (("step_ms", statistics.median), ("step_sync_ms", statistics.median),
                        ("prefill_ms", statistics.median), ("host_ms", statistics.median),
                        ("peak_mem_bytes", max), ("setup_peak_bytes", max), ("held_mem_bytes", max)):
            vals = [r[k] for r in rs if r.get(k) is not None]
            row[k] = pick(vals) if vals else None
        m = row["step_ms"]
        for k in ("step_ms", "step_ms_windows", "dense_kinds", "step_sync_ms", "host_ms"):
            row[k + "_runs"] = [r.get(k) for r in rs]
        row["step_ms_spread"] = (max(row["step_ms_runs"]) - min(row["step_ms_runs"])) / m
        row["decode_tok_s"] = row["batch"] * 1e3 / m
        row["x_floor"] = m / row["floor_ms"]
        out.append(row)
    return out


def run_isolated(model: str, variants: list[str], batches, prompt_len: int, gen: int, device: str,
                 compile: bool, check_tokens: int, axis: str, log=print, repeat: int = 1) -> list[dict]:
    """The rows of :func:`spense.engine.measure.run` for ``variants`` x ``batches``, each variant measured in a
    process of its own, ``repeat`` times in rounds (the token check in the first round only), merged by
    :func:`merge_rounds` (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="spense_bench_") as tmp:
        bw = str(Path(tmp) / "bw.json")
        _child(["--bw-only", "--bw", bw, "--device", device], "the copy bandwidth", lambda m: None)  # its JSON
        rounds = []
        for k in range(repeat):
            out = Path(tmp) / f"rows{k}.jsonl"
            common = ["--model", model, "--batches", ",".join(str(b) for b in batches), "--prompt-len",
                      str(prompt_len), "--gen", str(gen), "--check-tokens", str(check_tokens if k == 0 else 0),
                      "--axis", axis, "--device", device, "--bw", bw, "--out", str(out)] + ([] if compile else
                                                                                            ["--no-compile"])
            for v in variants:
                _child(common + ["--variants", v], f"variant {v!r}" + (f" (round {k + 1} of {repeat})"
                                                                       if repeat > 1 else ""), log)
            rounds.append([json.loads(line) for line in out.read_text().splitlines() if line.strip()]
                          if out.exists() else [])
        rows = merge_rounds(rounds)
        rec = json.loads(Path(bw).read_text())
    for r in rows:  # as one process's rows: the copy's detail, and one date for the report's header
        r.update({k: v for k, v in rec.items() if k.startswith("copy_tbps_")})
        r["date"] = rows[0]["date"]
    return set_speedups(rows)
