"""End-to-end decode measurement with the engine: dense vs Spense, one row per (variant, batch).

Per row: ``prefill_ms`` (one prompt of ``batch x prompt_len``), ``step_ms`` (a decode step: CUDA
events around ``gen - 3`` steps run back to back, the host queueing each while the GPU runs the one
before, as :meth:`Engine.stream` does and as gpt-fast times its step; ``step_ms_windows``: the same in each third
of those steps, to tell a process's drift from a difference between processes; ``host_ms``: the host's time to
queue one of them, near ``step_ms`` where the host, not the GPU, sets the pace), ``step_sync_ms`` (median of 8
steps each waited for alone: a step's latency with the host in the loop), ``decode_tok_s``,
``weight_bytes`` (every weight read per step: all parameters and buffers except the embedding
table), ``floor_ms = weight_bytes / copy_bw`` where ``copy_bw = 2 * bytes / time`` of a >= 512 MiB
device-to-device copy measured in the same run,
``peak_mem_bytes`` (the most memory allocated from the engine made to the last timed step: weights, cache,
prefill, first steps' compile and capture, steps; ``held_mem_bytes``: what is still allocated after the last
one), ``setup_peak_bytes`` (the most while the engine was made: a kernel choice measured on first use,
e.g. :func:`spense.runtime.dense.tune` on a shape the packaged table lacks, rotates weight copies past L2 once per
process), ``dense_kinds`` (what each plain weight runs, and whether that choice was measured in the process:
:func:`spense.runtime.dense.kept_kinds`), ``linear_weight_bytes`` (block linears as loaded) and
``dense_linear_weight_bytes`` (the same linears dense in the model dtype), greedy-token identity of
the first ``check_tokens`` against the ``reference`` backend (Spense) or the eager engine (dense).
Reports (tables, plots): :mod:`spense.report`.  Each row names its ``commit`` and the ``src_digest`` of
the code that ran (:mod:`spense.provenance`: a stale git checkout cannot misname it).
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import time
from pathlib import Path

import torch

from spense.engine.generate import PROMPT_BLOCK, Engine, round_up
from spense.engine.load import load
from spense.engine.model import RMSNorm, dense_shapes
from spense.engine.profile import profile_step
from spense.engine.sparsify import block_linears, sparsify, whole_layer_names
from spense.provenance import current_commit, source_digest
from spense.runtime.dense import kept_kinds
from spense.runtime.shapes import bucket


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30, reps: int = 20, detail: dict | None = None
                   ) -> float:
    """Bytes/s of a device-to-device copy of ``nbytes``: ``2 * nbytes * reps / time`` (read + write),
    CUDA events around ``reps`` back-to-back copies after a warm-up, best of 3 such runs.

    Two forms are timed; the faster is returned (``detail`` gets both, in TB/s): ``copy_`` (eager
    ``cudaMemcpyAsync``) and ``kernel`` (an SM elementwise kernel, ``torch.mul(a, 1, out=b)``).  A copy
    captured in a CUDA graph becomes a memcpy node served by the copy engines, which is slower: that is
    what the 2.7 TB/s of ``linear_bench.copy_bandwidth`` (graph-captured ``uint8`` copy) measured."""
    a = torch.ones(nbytes // 2, dtype=torch.bfloat16, device=device)
    b = torch.empty_like(a)
    forms = {"copy_": lambda: b.copy_(a), "kernel": lambda: torch.mul(a, 1, out=b)}
    res = {}
    for name, fn in forms.items():
        for _ in range(3):
            fn()
        torch.cuda.synchronize(device)
        best = float("inf")
        for _ in range(3):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(reps):
                fn()
            e.record()
            e.synchronize()
            best = min(best, s.elapsed_time(e) / 1e3 / reps)
        res[name] = 2 * (nbytes // 2) * 2 / best
    if detail is not None:
        detail.update({f"copy_tbps_{k}": v / 1e12 for k, v in res.items()})
    return max(res.values())


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


def _linear_bytes(model, lins) -> int:
    """Bytes of the block linears as held; a member of a fused projection holds row views (and a Spense
    member its index buffers): its rows are counted once, in the fused layer."""
    n = 0
    for m in lins.values():
        if getattr(m, "_fused", False):  # rows: views of the fused layer's; a Spense member keeps its indices
            n += sum(t.numel() * t.element_size() for t in (getattr(m, "sparse_idx", None),
                                                            getattr(m, "dense_idx", None)) if t is not None)
        else:
            n += _bytes([m])
    fused = [f for blk in model.model.layers for f in (blk.self_attn.qkv_fused, blk.mlp.gate_up_fused)
             if f is not None]
    return n + _bytes(fused)


def bench_cache(prompt_len: int, gen: int) -> int:
    """The cache a run needs: the prompt left-padded to whole ``PROMPT_BLOCK`` slots, ``gen`` new tokens and
    24 of the timed steps' spare."""
    return round_up(prompt_len, PROMPT_BLOCK) + gen + 24


def switches() -> dict[str, str]:
    """The ``SPENSE_*`` variables in effect that change how a step (or the prefill) runs:
    ``SPENSE_ATTENTION``, ``SPENSE_TUNING``, ``SPENSE_PDL``, ``SPENSE_OPERAND_ONLY``, ``SPENSE_NORM_PARTS``,
    ``SPENSE_MAX_AUTOTUNE``, ``SPENSE_GRAPH``, every ``SPENSE_FP8_*``, ``SPENSE_ATTN_*``, ``SPENSE_MMASP_*``,
    ``SPENSE_WGS*`` and ``SPENSE_DENSE_*`` switch (a new one is recorded without a list to update; not the prebuilt
    extension's path ``SPENSE_MMASP_SO``) and every ``TORCHINDUCTOR_*`` setting but the cache folder."""
    return {k: v for k, v in sorted(os.environ.items())
            if k in ("SPENSE_ATTENTION", "SPENSE_TUNING", "SPENSE_PDL", "SPENSE_OPERAND_ONLY", "SPENSE_NORM_PARTS",
                     "SPENSE_MAX_AUTOTUNE", "SPENSE_GRAPH")
            or (k.startswith(("SPENSE_FP8_", "SPENSE_ATTN_", "SPENSE_MMASP_", "SPENSE_WGS", "SPENSE_DENSE_"))
                and k != "SPENSE_MMASP_SO")
            or (k.startswith("TORCHINDUCTOR_") and k != "TORCHINDUCTOR_CACHE_DIR")}


def _running_spense(model):
    """The Spense layers of ``model`` that run: a fused projection, not its members."""
    from spense.runtime.linear import SpenseLinear

    return (m for m in model.modules() if isinstance(m, SpenseLinear) and not m._fused)


def launch_configs(model) -> dict[str, dict[int, list[int]]]:
    """The mma.sp launch config (row tiles, warps) per M bucket of each Spense layer shape that runs
    (``"N,K"``; a fused projection counts, its members do not)."""
    out: dict[str, dict[int, list[int]]] = {}
    for mod in _running_spense(model):
        if mod.mmasp_cfg:
            out.setdefault(f"{mod.out_features},{mod.in_features}", {}).update(
                {int(b): [int(v) for v in c] for b, c in mod.mmasp_cfg.items()})
    return out


def launch_cfg_from(model) -> dict[str, dict[int, int]]:
    """Where :func:`launch_configs` came from a table cell measured at another M: per layer shape (``"N,K"``), each
    such M bucket and the M of its cell (:func:`spense.runtime.autotune.cfg_cell`), e.g. ``{"6144,4096": {8: 4}}``
    where the GPU's table has no cell at M = 8 and the engine runs M = 4's launch config there.  Only buckets whose
    launch config is that cell's (not one tuned on the GPU)."""
    from spense.runtime.autotune import cfg_cell, default_mmasp_cfg

    out: dict[str, dict[int, int]] = {}
    for mod in _running_spense(model):
        for b, c in mod.mmasp_cfg.items():
            key = cfg_cell(mod, b)
            cell_m = None if key is None else int(key.rsplit(",", 1)[1])
            if cell_m not in (None, b) and tuple(c[:2]) == default_mmasp_cfg(mod, b):
                out.setdefault(f"{mod.out_features},{mod.in_features}", {})[int(b)] = cell_m
    return out


def weight_bytes(model) -> tuple[int, int, int]:
    """``(all weights read per step, block linears as held, the same linears dense)``."""
    lins = block_linears(model)
    lin = _linear_bytes(model, lins)
    elt = model.model.embed_tokens.weight.element_size()
    dense = sum(m.out_features * m.in_features * elt for m in lins.values())
    # every norm of every block: two (Gemma: four), and the q / k norms where there are
    others = [model.lm_head, model.model.norm] + [m for blk in model.model.layers for m in blk.modules()
                                                  if isinstance(m, RMSNorm)]
    return lin + _bytes(others), lin, dense


def env_info(device: torch.device) -> dict:
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": current_commit(),
            "src_digest": source_digest(), "torch": torch.__version__}


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
    nxt, lg, start, T = eng.prefill(prompts)
    _sync(dev)
    prefill_ms = (time.perf_counter() - t0) * 1e3
    outs = [nxt[:1, 0]]
    fast_logits = [lg[0].float().cpu()]  # row 0's logits after the prefill and after the first step
    for i in range(3):  # warm-up (compile / capture)
        nxt, lg = eng.step(nxt, T + i, start)
        outs.append(nxt[:1, 0])
        if i == 0:
            fast_logits.append(lg[0].float().cpu())
    # back to back, as generate runs: the host queues step i+1 while the GPU runs step i; marks (CUDA events, which
    # the host does not wait for, or host clocks on the CPU) at the start, at each third and at the end
    cuda = dev.type == "cuda"
    cuts = sorted({3, 3 + (gen - 3) // 3, 3 + 2 * (gen - 3) // 3, gen})  # gen = 5: two windows of one step
    events = [torch.cuda.Event(enable_timing=True) for _ in cuts] if cuda else []
    clocks: list = []  # the host's clock at each mark

    def mark():
        if cuda:
            events[len(clocks)].record()
        clocks.append(time.perf_counter())

    for i in range(3, gen):
        if i in cuts:
            mark()
        nxt, _ = eng.step(nxt, T + i, start)
        outs.append(nxt[:1, 0])
    mark()
    if cuda:
        events[-1].synchronize()
    ms = [(events[j].elapsed_time(events[j + 1]) if cuda else (clocks[j + 1] - clocks[j]) * 1e3)
          / (cuts[j + 1] - cuts[j]) for j in range(len(cuts) - 1)]
    host_ms = (clocks[-1] - clocks[0]) * 1e3 / (gen - 3)  # what queueing a step took the host
    step_ms = sum(m * (cuts[j + 1] - cuts[j]) for j, m in enumerate(ms)) / (gen - 3)
    tokens = [o.tolist() for o in outs]
    # one step at a time, the host waiting for each (the latency of a step alone): median of 8
    steps = []
    for i in range(gen, gen + 8):
        _sync(dev)
        t2 = time.perf_counter()
        nxt, _ = eng.step(nxt, T + i, start)
        _sync(dev)
        steps.append((time.perf_counter() - t2) * 1e3)
    steps.sort()
    return {"prefill_ms": prefill_ms, "step_ms": step_ms, "step_ms_windows": ms, "host_ms": host_ms,
            "step_sync_ms": steps[len(steps) // 2],
            "decode_tok_s": B * 1e3 / step_ms,
            "tokens": [t[0] for t in tokens], "prompt0": prompts[0], "next_state": (nxt, T + gen + 8, start),
            "fast_logits": tuple(fast_logits)}


def _ulps(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def bf16_ulp(v: float) -> float:
    """The spacing of bf16 numbers at magnitude ``v``: ``2^(floor(log2 v) - 7)`` (8 significant bits)."""
    import math

    return 2.0 ** (math.floor(math.log2(max(abs(v), 1e-30))) - 7)


def logit_diff_ulps(ref: torch.Tensor, fast: torch.Tensor) -> float:
    """``max_v |ref_v - fast_v| / ulp_bf16(max_v |ref_v|)``: how far two backends' logits of the same input lie
    apart, in bf16 ulps of the largest logit (:func:`bf16_ulp`)."""
    ref, fast = ref.float().cpu(), fast.float().cpu()
    return float((ref - fast).abs().max()) / bf16_ulp(float(ref.abs().max()))


def _greedy_check(model, prompt: list[int], fast: list[int], n: int, spense_ref: bool,
                  fast_logits: tuple | None = None) -> dict:
    """Greedy tokens of the reference (SpenseLinear: ``reference`` backend; else the eager engine)
    for ``n`` tokens vs ``fast``; at the first divergence the reference's logit margin between its
    token and the fast one, also in bf16 ulps of the largest logit (``tie_ulps``: a few = a numeric tie).

    ``fast_logits`` (the fast run's logits of ``prompt`` after its prefill and after its first step, which
    takes ``fast[0]``, as the reference's first step does): ``noise_ulps`` = the larger
    :func:`logit_diff_ulps` of the two, the two backends' numeric spread on the same input; a divergence
    whose margin lies within it (``tie_within_noise``) is a numeric tie, not a wrong token."""
    from spense.runtime.linear import SpenseLinear

    old = {m: m.backend for m in model.modules() if isinstance(m, SpenseLinear)}
    for m in old:
        m.backend = "reference"
    try:
        eng = Engine(model, 1, len(prompt) + n + 64, compile=False, cuda_graph=False)
        nxt, logits, start, T = eng.prefill([prompt])
        ref, margin, ulps, first, noise = [], None, None, None, []
        for i in range(n):
            if i:
                nxt, logits = eng.step(nxt, T + i - 1, start)
            if fast_logits is not None and i < len(fast_logits):
                noise.append(logit_diff_ulps(logits[0], fast_logits[i]))
            t = int(nxt[0, 0])
            ref.append(t)
            if first is None and i < len(fast) and fast[i] != t:
                first = i
                margin = float(logits[0, t] - logits[0, fast[i]])
                ulps = margin / bf16_ulp(float(logits[0].abs().max()))
                nxt = torch.full_like(nxt, fast[i])  # follow the fast sequence from here on
                ref[-1] = fast[i]
        spread = max(noise) if noise else None
        return {"tokens_identical": first is None, "first_divergence": first, "tie_margin": margin,
                "tie_ulps": ulps, "noise_ulps": spread,
                "tie_within_noise": None if spread is None else (first is None or ulps <= spread),
                "token_reference": "reference backend, eager" if old else "eager engine"}
    finally:
        for m, b in old.items():
            m.backend = b


VARIANT_RE = r"^(dense|spense(?P<r>[0-9.]+)|whole(?P<w>[0-9.]+))(?P<fp8>-fp8)?$"


def parse_variant(v: str) -> tuple[float | None, bool]:
    """``"dense"`` / ``"dense-fp8"`` / ``"spense0.25"`` / ``"spense0.25-fp8"`` / ``"whole0.25"`` (the first
    ⌊0.25·L⌋ layers dense, 2:4 elsewhere, see :func:`whole_share`) -> ``(ratio | None, fp8)``; a
    whole-layer variant's ratio is 0 (its pruned layers have no dense region)."""
    import re

    from spense.errors import InputError

    m = re.match(VARIANT_RE, v)
    if not m:
        raise InputError(f"unknown variant {v!r} (dense, spense<ratio>, whole<share>, each with -fp8 or not)")
    ratio = float(m.group("r")) if m.group("r") else (0.0 if m.group("w") else None)
    return ratio, bool(m.group("fp8"))


def set_speedups(rows: list[dict]) -> list[dict]:
    """``speedup_vs_dense = step_ms(dense of the same precision, same batch) / step_ms`` of every row (None where
    there is none); ``rows`` in place, returned."""
    dense = {}
    for r in rows:
        ratio, fp8 = parse_variant(r["variant"])
        if ratio is None:
            dense[(fp8, r["batch"])] = r["step_ms"]
    for r in rows:
        base = dense.get((parse_variant(r["variant"])[1], r["batch"]))
        r["speedup_vs_dense"] = base / r["step_ms"] if base else None
    return rows


def whole_share(v: str) -> float | None:
    """The dense share of a ``whole<share>`` variant, else None."""
    import re

    m = re.match(VARIANT_RE, v)
    return float(m.group("w")) if m and m.group("w") else None


def build_variant(model: str, variant: str, dev: torch.device, layers: int | None, seed: int, axis: str,
                  tune_ms=()):
    """The engine model of ``variant`` (see :func:`parse_variant`) and its label."""
    from spense.engine.sparsify import fp8_dense, fp8_lm_head, fp8_lm_head_on

    ratio, fp8 = parse_variant(variant)
    fp8_head = fp8_lm_head_on()  # read (and checked) for every variant: a bad value fails a BF16 run too
    loaded = load(model, dev, torch.bfloat16 if dev.type == "cuda" else torch.float32, layers=layers, seed=seed)
    m = loaded.model
    share = whole_share(variant)
    if share is not None:  # whole dense layers (runtime.dense, or the FP8 dense baseline) + 2:4 elsewhere
        keep = set(whole_layer_names(m, share))
        sparsify(m, 0.0, axis=axis, fp8=fp8, keep=keep)
        if fp8:
            fp8_dense(m, tune_ms=tune_ms if dev.type == "cuda" else (), names=keep)
    elif ratio is not None:
        sparsify(m, ratio, axis=axis, fp8=fp8)
    elif fp8:
        fp8_dense(m, tune_ms=tune_ms if dev.type == "cuda" else ())
    if fp8 and fp8_head:  # SPENSE_FP8_LM_HEAD=1: every FP8 model's lm_head in e4m3 too
        fp8_lm_head(m, tune_ms=tune_ms if dev.type == "cuda" else ())
    return m, loaded.label


def run(model: str, batches=(1, 8), ratios=(0.25,), fp8: bool = False, prompt_len: int = 512, gen: int = 64,
        device: str = "cuda", compile: bool = True, check_tokens: int = 32, axis: str = "cols", seed: int = 0,
        layers: int | None = None, log=print, sink=None, variants=None, copy_bw: float | None = None,
        profile: bool = False) -> list[dict]:
    """Rows for each variant x batch (default: the dense model then each Spense ratio; ``fp8``: the FP8
    dense baseline and FP8 Spense); see the module doc."""
    dev = torch.device(device)
    info = env_info(dev)
    bw_detail: dict = {}
    bw = copy_bw if copy_bw else (copy_bandwidth(dev, detail=bw_detail) if dev.type == "cuda" else float("nan"))
    suffix = "-fp8" if fp8 else ""
    variants = list(variants or (["dense" + suffix] + [f"spense{r:g}{suffix}" for r in ratios]))
    rows: list[dict] = []
    for variant in variants:
        t0 = time.perf_counter()
        ratio, vfp8 = parse_variant(variant)
        tune_ms = sorted({*batches, *(b * prompt_len for b in batches)})
        m, label = build_variant(model, variant, dev, layers, seed, axis, tune_ms)
        build_s = time.perf_counter() - t0
        wb, lwb, dlwb = weight_bytes(m)
        for B in batches:
            if dev.type == "cuda":
                gc.collect()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            t1 = time.perf_counter()
            eng = Engine(m, B, bench_cache(prompt_len, gen), compile=compile, compile_prefill=False)
            setup_peak = None
            if dev.type == "cuda":  # the run's peak from here: what the engine holds, not what choosing kernels took
                setup_peak = torch.cuda.max_memory_allocated(dev)
                torch.cuda.reset_peak_memory_stats(dev)
            r = _time_engine(eng, B, prompt_len, gen, seed + B)
            row = {"model": label, "variant": variant, "dtype": "fp8" if vfp8 else
                   str(m.model.embed_tokens.weight.dtype).replace("torch.", ""), "dense_ratio": ratio,
                   "axis": axis if ratio is not None else None, "whole_share": whole_share(variant), "batch": B,
                   "prompt_len": prompt_len, "gen": gen, "compiled": eng.compiled, "cuda_graph":
                   eng.compiled or eng.graphs, "graph": eng.graph, "prefill_ms": r["prefill_ms"],
                   "step_ms": r["step_ms"],
                   "step_ms_windows": r["step_ms_windows"], "step_sync_ms": r["step_sync_ms"], "host_ms": r["host_ms"],
                   "attention": eng.attention, "inductor_tuning": eng.tuning, "max_autotune": eng.max_autotune,
                   "attention_fused": m.model.layers[0].self_attn.fused, "inductor_pdl": eng.pdl,
                   "decode_tok_s": r["decode_tok_s"], "weight_bytes": wb, "linear_weight_bytes": lwb,
                   "dense_linear_weight_bytes": dlwb, "linear_bytes_ratio": lwb / dlwb,
                   "copy_tbps": bw / 1e12, "floor_ms": wb / bw * 1e3, "build_s": build_s,
                   "compile_and_time_s": time.perf_counter() - t1,
                   "peak_mem_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
                   "setup_peak_bytes": setup_peak,
                   "held_mem_bytes": torch.cuda.memory_allocated(dev) if dev.type == "cuda" else None,
                   "launch_cfg": launch_configs(m), "launch_cfg_from": launch_cfg_from(m),
                   "dense_kinds": kept_kinds(dev, bucket(B), dense_shapes(m)), "switches": switches(),
                   **bw_detail}
            row["x_floor"] = row["step_ms"] / row["floor_ms"]
            if profile and B == batches[0] and dev.type == "cuda":
                try:
                    kernels: list = []
                    excl: dict = {}
                    row["profile_ms"] = profile_step(eng, r["next_state"], kernels=kernels, exclusive=excl)
                    row["profile_kernels"] = kernels
                    row["profile_wall_ms"] = excl
                except Exception as e:  # the profile is optional
                    row["profile_error"] = f"{type(e).__name__}: {e}"[:300]
            if check_tokens and B == batches[0]:
                n = min(check_tokens, len(r["tokens"]))
                row.update(_greedy_check(m, r["prompt0"], r["tokens"][:n], n, ratio is not None, r["fast_logits"]))
            row.update(info)
            rows.append(row)
            set_speedups(rows)
            if sink is not None:
                sink(rows)
            floor = "floor n/a" if bw != bw else f"{row['x_floor']:.2f}x floor {row['floor_ms']:.3f} ms"  # CPU: nan
            log(f"{row['model']} {row['variant']} B={B}: step {r['step_ms']:.3f} ms ({floor}), "
                f"{row['decode_tok_s']:.1f} tok/s, linear bytes {lwb / dlwb:.3f} of dense, "
                f"peak {row['peak_mem_bytes'] or 0:.3e} B, tokens identical {row.get('tokens_identical')} "
                f"(first divergence {row.get('first_divergence')}, margin {row.get('tie_margin')}, "
                f"{_ulps(row.get('tie_ulps'))} ulps; backends' spread {_ulps(row.get('noise_ulps'))} ulps)")
            if row["launch_cfg_from"]:  # the GPU's table has no cell at these M: a neighbouring M's config runs
                log("  launch configs from a cell of another M (shape: M <- the cell's M): " + "; ".join(
                    f"{k}: " + ", ".join(f"{b} <- {c}" for b, c in sorted(v.items()))
                    for k, v in sorted(row["launch_cfg_from"].items())))
            del eng
        del m
    return rows


def main(argv=None) -> int:
    """``python -m spense.engine.measure``: one stage of the end-to-end benchmark (rows appended to
    ``--out`` as JSON lines as soon as each exists)."""
    import argparse
    import json
    import warnings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen3-8b")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--variants", default="dense")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--check-tokens", type=int, default=32)
    ap.add_argument("--axis", default="cols", choices=("cols", "rows"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--bw", default=None, help="JSON file of the copy bandwidth (read; written by --bw-only)")
    ap.add_argument("--bw-only", action="store_true", help="measure the copy bandwidth only, write --bw")
    ap.add_argument("--out", default=None, help="JSON-lines file the rows are appended to")
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    dev = torch.device(a.device)
    if a.bw_only:
        detail: dict = {}
        bw = copy_bandwidth(dev, detail=detail) if dev.type == "cuda" else float("nan")
        rec = {"copy_bps": bw, "copy_tbps": bw / 1e12, "bytes": 1 << 30, **detail, **env_info(dev)}
        print(json.dumps(rec), flush=True)
        if a.bw:
            Path(a.bw).write_text(json.dumps(rec))
        return 0
    bw = None
    if a.bw and Path(a.bw).is_file():
        rec = json.loads(Path(a.bw).read_text())
        bw = rec["copy_bps"]
    written = [0]

    def sink(rows):
        if a.out:
            with open(a.out, "a") as f:
                for r in rows[written[0]:]:
                    f.write(json.dumps(r, default=str) + "\n")
        written[0] = len(rows)

    run(a.model, batches=[int(b) for b in a.batches.split(",")], variants=a.variants.split(","),
        prompt_len=a.prompt_len, gen=a.gen, device=a.device, compile=not a.no_compile,
        check_tokens=a.check_tokens, axis=a.axis, layers=a.layers, log=lambda m: print(m, flush=True),
        sink=sink, copy_bw=bw, profile=a.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
