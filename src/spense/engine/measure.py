"""End-to-end decode measurement with the engine: dense vs Spense, one row per (variant, batch).

Per row: ``prefill_ms`` (one prompt of ``batch x prompt_len``), ``step_ms`` (median decode step,
CUDA events around ``gen`` steps), ``decode_tok_s``, ``weight_bytes`` (every weight read per step:
all parameters and buffers except the embedding table), ``floor_ms = weight_bytes / copy_bw`` where
``copy_bw = 2 * bytes / time`` of a >= 512 MiB device-to-device copy measured in the same run,
``peak_mem_bytes``, ``linear_weight_bytes`` (block linears as loaded) and
``dense_linear_weight_bytes`` (the same linears dense in the model dtype), greedy-token identity of
the first ``check_tokens`` against the ``reference`` backend (Spense) or the eager engine (dense).
Reports (tables, plots): :mod:`spense.report`.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import subprocess
import time
from pathlib import Path

import torch

from spense.engine.generate import Engine
from spense.engine.load import load
from spense.engine.sparsify import block_linears, sparsify


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30) -> float:
    """Bytes/s of a device-to-device copy ((read + write) / time), median of 5."""
    a = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize(device)
    ts = []
    for _ in range(5):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) / 1e3)
    del a, b
    return 2 * nbytes / sorted(ts)[2]


def _bytes(mods) -> int:
    seen, n = set(), 0
    for m in mods:
        if hasattr(m, "weight_bytes") and callable(m.weight_bytes):
            n += m.weight_bytes()
            continue
        for t in list(m.parameters()) + list(m.buffers()):
            if t.data_ptr() not in seen and t.numel():
                seen.add(t.data_ptr())
                n += t.numel() * t.element_size()
    return n


def weight_bytes(model) -> tuple[int, int, int]:
    """``(all weights read per step, block linears as held, the same linears dense)``."""
    lins = block_linears(model)
    lin = _bytes(lins.values())
    elt = model.model.embed_tokens.weight.element_size()
    dense = sum(m.out_features * m.in_features * elt for m in lins.values())
    others = [model.lm_head, model.model.norm] + [blk.input_layernorm for blk in model.model.layers] + \
             [blk.post_attention_layernorm for blk in model.model.layers]
    others += [getattr(blk.self_attn, n) for blk in model.model.layers for n in ("q_norm", "k_norm")
               if hasattr(blk.self_attn, n)]
    return lin + _bytes(others), lin, dense


def env_info(device: torch.device) -> dict:
    commit = os.environ.get("SPENSE_COMMIT")
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                    capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
        except Exception:
            commit = "unknown"
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
            "torch": torch.__version__}


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time_engine(eng: Engine, B: int, prompt_len: int, gen: int, seed: int) -> dict:
    dev = eng.device
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(0, eng.model.args.vocab_size, (B, prompt_len), generator=g).tolist()
    eng.prefill(prompts)  # warm-up / compile
    _sync(dev)
    t0 = time.perf_counter()
    nxt, _, start, T = eng.prefill(prompts)
    _sync(dev)
    prefill_ms = (time.perf_counter() - t0) * 1e3
    tokens = [nxt[:1, 0].tolist()]
    for i in range(3):  # warm-up (compile / capture)
        nxt, _ = eng.step(nxt, T + i, start)
        tokens.append(nxt[:1, 0].tolist())
    steps = []
    for i in range(3, gen):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            nxt, _ = eng.step(nxt, T + i, start)
            b.record()
            b.synchronize()
            steps.append(a.elapsed_time(b))
        else:
            t1 = time.perf_counter()
            nxt, _ = eng.step(nxt, T + i, start)
            steps.append((time.perf_counter() - t1) * 1e3)
        tokens.append(nxt[:1, 0].tolist())
    steps.sort()
    step_ms = steps[len(steps) // 2]
    return {"prefill_ms": prefill_ms, "step_ms": step_ms, "decode_tok_s": B * 1e3 / step_ms,
            "tokens": [t[0] for t in tokens], "prompt0": prompts[0]}


def _greedy_reference(model, prompt: list[int], n: int) -> list[int]:
    from spense.runtime.linear import SpenseLinear

    old = {m: m.backend for m in model.modules() if isinstance(m, SpenseLinear)}
    for m in old:
        m.backend = "reference"
    try:
        eng = Engine(model, 1, len(prompt) + n + 64, compile=False, cuda_graph=False)
        return eng.generate([prompt], n).tokens[0]
    finally:
        for m, b in old.items():
            m.backend = b


def run(model: str, batches=(1, 8), ratios=(0.25,), fp8: bool = False, prompt_len: int = 512, gen: int = 64,
        device: str = "cuda", compile: bool = True, check_tokens: int = 32, axis: str = "cols", seed: int = 0,
        layers: int | None = None, log=print, sink=None) -> list[dict]:
    """Rows for the dense model then each Spense ratio (see the module doc)."""
    dev = torch.device(device)
    info = env_info(dev)
    bw = copy_bandwidth(dev) if dev.type == "cuda" else float("nan")
    rows: list[dict] = []
    dense_step: dict[int, float] = {}
    for variant in ["dense"] + [f"spense{r:g}" for r in ratios]:
        loaded = load(model, dev, torch.bfloat16 if dev.type == "cuda" else torch.float32, layers=layers,
                      seed=seed)
        m = loaded.model
        if variant != "dense":
            sparsify(m, float(variant[6:]), axis=axis, fp8=fp8)
        wb, lwb, dlwb = weight_bytes(m)
        for B in batches:
            if dev.type == "cuda":
                gc.collect()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            eng = Engine(m, B, prompt_len + gen + 8, compile=compile, compile_prefill=False)
            r = _time_engine(eng, B, prompt_len, gen, seed + B)
            row = {"model": loaded.label, "variant": variant, "dtype": "fp8" if fp8 and variant != "dense" else
                   str(m.model.embed_tokens.weight.dtype).replace("torch.", ""), "batch": B,
                   "prompt_len": prompt_len, "gen": gen, "compiled": eng.compiled, "cuda_graph":
                   eng.compiled or eng.graphs, "prefill_ms": r["prefill_ms"], "step_ms": r["step_ms"],
                   "decode_tok_s": r["decode_tok_s"], "weight_bytes": wb, "linear_weight_bytes": lwb,
                   "dense_linear_weight_bytes": dlwb, "linear_bytes_ratio": lwb / dlwb,
                   "copy_tbps": bw / 1e12, "floor_ms": wb / bw * 1e3,
                   "peak_mem_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None}
            row["x_floor"] = row["step_ms"] / row["floor_ms"]
            if variant == "dense":
                dense_step[B] = r["step_ms"]
            row["speedup_vs_dense"] = dense_step[B] / r["step_ms"] if B in dense_step else None
            if check_tokens and B == batches[0]:
                n = min(check_tokens, len(r["tokens"]))
                ref = _greedy_reference(m, r["prompt0"], n)
                row["tokens_identical"] = ref == r["tokens"][:n]
                row["first_divergence"] = next((i for i, (a, b) in enumerate(zip(ref, r["tokens"])) if a != b), None)
                row["token_reference"] = "reference backend, eager" if variant != "dense" else "eager engine"
            row.update(info)
            rows.append(row)
            if sink is not None:
                sink(rows)
            log(f"{row['variant']} B={B}: step {r['step_ms']:.3f} ms ({row['x_floor']:.2f}x floor), "
                f"{row['decode_tok_s']:.1f} tok/s, linear bytes {lwb / dlwb:.3f} of dense")
            del eng
        del m, loaded
    return rows
