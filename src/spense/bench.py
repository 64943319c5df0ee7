"""End-to-end decode benchmark: dense vs Spense (vs pure 2:4) on whole causal LMs, BF16 and FP8.

One run builds (or loads) a model once and measures, for every dtype, batch size and variant
(the dense model, then a Spense model per dense ratio; ratio 0 is pure 2:4):

* **prefill**: one forward of ``batch x prompt_len`` tokens into a ``transformers.StaticCache``
  (CUDA events, median of ``prefill_reps`` runs after a warm-up);
* **decode**: greedy one-token steps against the static cache, the whole step (model forward,
  ``argmax``, advancing the input token / positions) captured in one ``torch.cuda.CUDAGraph`` and
  replayed; per-step CUDA events give the per-token latency (p50 / p99) and decode tokens/s
  (``batch x steps / time``).  On CPU there are no CUDA graphs: the same step runs eagerly and is
  timed with the host clock (with a warning) - only useful for tests;
* peak memory (``torch.cuda.max_memory_allocated``, excluding the dense weights the harness keeps
  aside while another variant is mounted) and weight bytes (parameters + buffers of the model, the
  block linears separately);
* optional: greedy-token identity of the fast backend against the ``reference`` backend of the same
  Spense model (dense: against a no-cache full-recompute greedy loop), with the logit margin at
  the first divergence; a torch-profiler breakdown of decode GPU time per op class; perplexity.

Model sources: a built-in Qwen3 shape (``qwen3-8b``, ``qwen3-32b``, ``qwen3-32b[:16]`` for the first
16 layers, ``qwen3-tiny`` for smoke tests) built with random weights directly on the device; a
``config.json`` (file, or a folder without weights) likewise; a local Hugging Face model folder
(pruned here with a fast magnitude selection: magnitude 2:4 in the sparse region, the dense region =
the ``block``-aligned columns/rows of largest L2 norm - accuracy is not the point of this command);
or a Spense checkpoint (``spense.json``: its own layouts and pruned weights are used as they are).

FP8 (``--dtype fp8``): dense model = :class:`spense.runtime.fp8.Fp8Linear` (e4m3 weights with
per-output-channel scales, dynamic per-token activation scales, ``torch._scaled_mm``); Spense model =
the runtime's FP8 :class:`~spense.runtime.SpenseLinear` (``pack(..., fp8=True)``).  Embeddings,
attention, norms and the LM head stay BF16 in every variant.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import inspect
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch
import typer
from torch import nn

from spense.errors import InputError, SpenseError
from spense.format import SpenseLayout, dense_count
from spense.selection import top_blocks, top_indices

DTYPES = ("bf16", "fp8", "fp32")
#: decode tok/s speed-up targets at dense ratio 0.25, batch <= 8 (benchmark targets, not tests)
TARGETS = {"bf16": 1.30, "fp8": 1.25}
TARGET_RATIO = 0.25
TARGET_MAX_BATCH = 8
SLACK = 24  # extra cache slots beyond prompt_len + gen (profiling steps run there)

# --------------------------------------------------------------------------------------------------
# built-in model shapes
# --------------------------------------------------------------------------------------------------
_QWEN3_COMMON = dict(vocab_size=151936, head_dim=128, rms_norm_eps=1e-6, tie_word_embeddings=False,
                     hidden_act="silu", max_position_embeddings=40960, attention_bias=False)
BUILTIN_CONFIGS: dict[str, dict[str, Any]] = {
    "qwen3-8b": dict(_QWEN3_COMMON, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8),
    "qwen3-32b": dict(_QWEN3_COMMON, hidden_size=5120, intermediate_size=25600, num_hidden_layers=64,
                      num_attention_heads=64, num_key_value_heads=8),
    # CPU smoke tests only
    "qwen3-tiny": dict(_QWEN3_COMMON, vocab_size=1024, head_dim=32, hidden_size=128,
                       intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=1024),
}
ROPE_THETA = 1_000_000.0
_SPEC_RE = re.compile(r"^(?P<name>[a-z0-9.\-]+?)(?:\[:(?P<layers>\d+)(?:\s*layers)?\])?$")


def parse_model_spec(spec: str) -> tuple[str, int | None] | None:
    """``"qwen3-32b[:16]"`` -> ``("qwen3-32b", 16)``; None when ``spec`` is not a built-in name."""
    m = _SPEC_RE.match(spec.strip().lower())
    if not m or m.group("name") not in BUILTIN_CONFIGS:
        return None
    return m.group("name"), (int(m.group("layers")) if m.group("layers") else None)


def qwen3_config(name: str, layers: int | None = None):
    """A ``transformers.Qwen3Config`` of a built-in shape (optionally only the first ``layers``)."""
    from transformers import Qwen3Config

    kw = dict(BUILTIN_CONFIGS[name])
    if layers is not None:
        if not 1 <= layers <= kw["num_hidden_layers"]:
            raise InputError(f"{name} has {kw['num_hidden_layers']} layers; cannot take the first {layers}")
        kw["num_hidden_layers"] = layers
    try:
        cfg = Qwen3Config(**kw, rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA})
    except TypeError:  # transformers 4.x
        cfg = Qwen3Config(**kw, rope_theta=ROPE_THETA)
    return cfg


@contextlib.contextmanager
def _no_init():
    """Skip transformers'/torch's weight initialisation while constructing a model."""
    ctx = None
    for mod, attr in (("transformers.initialization", "no_init_weights"),
                      ("transformers.modeling_utils", "no_init_weights")):
        try:
            ctx = getattr(__import__(mod, fromlist=[attr]), attr)
            break
        except (ImportError, AttributeError):
            continue
    with (ctx() if ctx is not None else contextlib.nullcontext()):
        yield


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@torch.no_grad()
def random_model_from_config(config, device: torch.device, dtype: torch.dtype, seed: int = 0,
                             std: float = 0.02) -> nn.Module:
    """Construct ``AutoModelForCausalLM`` from ``config`` directly on ``device`` in ``dtype``, without
    the library's initialisation, then fill weights with N(0, std) (norm weights 1, biases 0)."""
    from transformers import AutoModelForCausalLM

    try:
        config._attn_implementation = "sdpa"
    except Exception:  # pragma: no cover
        pass
    with torch.device(device), _default_dtype(dtype), _no_init():
        try:
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        except TypeError:  # transformers 4.x
            model = AutoModelForCausalLM.from_config(config, torch_dtype=dtype)
    for p in model.parameters():  # parameters only: RoPE buffers stay float32
        if p.dtype != dtype:
            p.data = p.data.to(dtype)
    g = torch.Generator(device=device).manual_seed(int(seed))
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            p.normal_(0.0, std, generator=g)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.fill_(1.0)
    for name, b in model.named_buffers():
        if b.is_floating_point() and not bool(torch.isfinite(b).all()):
            raise SpenseError(f"buffer {name} is not finite after construction")
    return model.eval()


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------
@dataclass
class BenchModel:
    model: nn.Module
    label: str
    source: str  # "random" | "hf" | "spense"
    manifest: dict | None = None
    model_dir: Path | None = None


def _resolve_device(device: str | torch.device) -> torch.device:
    from spense.pipeline import resolve_device

    return resolve_device(device)


def load_bench_model(spec: str | os.PathLike, device: torch.device, dtype: torch.dtype, seed: int = 0,
                     layers: int | None = None) -> BenchModel:
    """Build or load the model named by ``spec`` (see the module doc) on ``device`` in ``dtype``."""
    s = str(spec)
    parsed = parse_model_spec(s) if not Path(s).expanduser().exists() else None
    if parsed is not None:
        name, n = parsed
        n = layers if layers is not None else n
        cfg = qwen3_config(name, n)
        full = BUILTIN_CONFIGS[name]["num_hidden_layers"]
        label = name if cfg.num_hidden_layers == full else f"{name}[:{cfg.num_hidden_layers} layers]"
        return BenchModel(random_model_from_config(cfg, device, dtype, seed), label, "random")
    p = Path(s).expanduser()
    if not p.exists():
        raise InputError(
            f"{s!r} is neither a local model folder / config.json nor a built-in shape "
            f"({', '.join(BUILTIN_CONFIGS)}, optionally NAME[:LAYERS])"
        )
    from transformers import AutoConfig

    if p.is_file() or not (list(p.glob("*.safetensors")) or list(p.glob("pytorch_model*.bin"))):
        cfg_path = p if p.is_file() else p / "config.json"
        if not cfg_path.is_file():
            raise InputError(f"{p} has neither weights nor a config.json")
        cfg = AutoConfig.from_pretrained(str(cfg_path.parent if cfg_path.name == "config.json" else cfg_path))
        if layers is not None:
            cfg.num_hidden_layers = layers
        label = f"{cfg_path.parent.name or cfg_path.stem}(random)"
        return BenchModel(random_model_from_config(cfg, device, dtype, seed), label, "random")
    if (p / "spense.json").is_file():
        from spense.io import load_checkpoint, validate_checkpoint

        manifest = validate_checkpoint(p)
        model = load_checkpoint(p, device=device, dtype=dtype)
        _set_sdpa(model)
        return BenchModel(model, p.name, "spense", manifest, p)
    from spense.pipeline import load_model

    model = load_model(p, dtype=dtype).to(device).eval()
    _set_sdpa(model)
    return BenchModel(model, p.name, "hf", None, p)


def _set_sdpa(model: nn.Module) -> None:
    try:
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("sdpa")
        else:  # pragma: no cover
            model.config._attn_implementation = "sdpa"
    except Exception as e:  # pragma: no cover
        warnings.warn(f"could not switch attention to sdpa: {e}", RuntimeWarning, stacklevel=2)


# --------------------------------------------------------------------------------------------------
# fast pruning into Spense form
# --------------------------------------------------------------------------------------------------
def block_linears(model: nn.Module, block: int = 64) -> dict[str, nn.Module]:
    """``{full module name: linear}`` of every prunable linear inside the decoder blocks."""
    from spense.pipeline import find_blocks, find_linears

    prefix, blocks = find_blocks(model)
    out: dict[str, nn.Module] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, blk in enumerate(blocks):
            for n, m in find_linears(blk, block_size=block).items():
                out[f"{prefix}.{i}.{n}"] = m
    return out


def mask_24(s: torch.Tensor) -> torch.Tensor:
    """Keep-mask (True = kept) of the 2 largest-magnitude entries of every aligned group of 4."""
    R, K = s.shape
    g = s.detach().abs().float().reshape(R, K // 4, 4)
    idx = g.topk(2, dim=-1).indices
    keep = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True)
    return keep.reshape(R, K)


@torch.no_grad()
def magnitude_spense(w: torch.Tensor, ratio: float, axis: str = "cols", block: int = 64
                     ) -> tuple[torch.Tensor, SpenseLayout]:
    """Fast Spense pruning of one ``(N, K)`` weight: dense region = the ``block``-aligned count of
    rows with the largest L2 norm (``axis="rows"``), or the whole aligned ``block``-column blocks of
    largest L2 norm (``axis="cols"``: the runtime's mma.sp kernel then reads x per 64-column block
    without any gather), magnitude 2:4 everywhere else."""
    N, K = w.shape
    dim = K if axis == "cols" else N
    d = dense_count(dim, ratio, block)
    if d:
        score = w.float().pow(2).sum(dim=0 if axis == "cols" else 1)
        idx = top_blocks(score, d, block) if axis == "cols" and d < dim else top_indices(score, d)
    else:
        idx = torch.zeros(0, dtype=torch.long)
    lay = SpenseLayout((N, K), axis=axis, dense_idx=idx, block=block)
    lay.validate()
    s, dn = lay.split(w)
    if s.numel():
        s = s * mask_24(s).to(s.dtype)
    return lay.merge(s, dn).to(w.dtype), lay


# -- the one place that builds runtime modules --------------------------------------------------------
def make_spense_linear(weight: torch.Tensor, bias: torch.Tensor | None, layout: SpenseLayout,
                       backend: str, fp8: bool, name: str = "") -> nn.Module:
    """ADAPTER to :mod:`spense.runtime`: a ``SpenseLinear`` for a dense-with-zeros Spense weight."""
    from spense.format import pack
    from spense.runtime.linear import SpenseLinear

    return SpenseLinear(pack(weight.contiguous(), layout, fp8=fp8), bias, backend=backend, name=name)


def set_backend(model: nn.Module, backend: str) -> None:
    """Switch every SpenseLinear of ``model`` to ``backend`` (e.g. ``reference`` for the token check)."""
    from spense.runtime.linear import SpenseLinear

    for m in model.modules():
        if isinstance(m, SpenseLinear):
            m.backend = backend


def backend_summary(model: nn.Module) -> dict[str, Any]:
    """Which kernel each SpenseLinear picked per M bucket (``auto``), and dense fallbacks."""
    from spense.runtime.linear import SpenseLinear

    choice: dict[str, int] = {}
    fallbacks = 0
    for m in model.modules():
        if isinstance(m, SpenseLinear):
            for b, c in getattr(m, "choice", {}).items():
                k = f"M<={b}:{c}"
                choice[k] = choice.get(k, 0) + 1
            fallbacks += len(getattr(m, "fallbacks", {}))
    return {"choice": choice, "dense_fallbacks": fallbacks}


class Swapper:
    """Mount replacement modules for the block linears of a model and put the originals back."""

    def __init__(self, model: nn.Module, linears: dict[str, nn.Module]):
        self.model = model
        self.originals = dict(linears)
        self.mounted: set[str] = set()

    def _parent(self, name: str) -> tuple[nn.Module, str]:
        parent, _, child = name.rpartition(".")
        return (self.model.get_submodule(parent) if parent else self.model), child

    def mount(self, name: str, module: nn.Module) -> None:
        p, c = self._parent(name)
        setattr(p, c, module)
        self.mounted.add(name)

    def restore(self) -> None:
        for name in list(self.mounted):
            p, c = self._parent(name)
            setattr(p, c, self.originals[name])
        self.mounted.clear()

    def aside_bytes(self) -> int:
        """Bytes of original modules currently not mounted in the model (kept aside on the device)."""
        return sum(_module_bytes(self.originals[n]) for n in self.mounted)


def _module_bytes(m: nn.Module, seen: set | None = None) -> int:
    seen = set() if seen is None else seen
    total = 0
    for t in list(m.parameters()) + list(m.buffers()):
        if t is None:
            continue
        key = (t.device, t.data_ptr())
        if key in seen or t.data_ptr() == 0:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total


def weight_bytes(model: nn.Module, linears: Iterable[str] | None = None) -> tuple[int, int]:
    """``(all parameters + buffers, block linears only)`` in bytes (shared storage counted once)."""
    seen: set = set()
    total = _module_bytes(model, seen)
    lin = 0
    if linears is not None:
        seen2: set = set()
        for n in linears:
            lin += _module_bytes(model.get_submodule(n), seen2)
    return total, lin


@dataclass
class Variant:
    name: str  # "dense" | "spense"
    dense_ratio: float
    build: Callable[[], None]


# --------------------------------------------------------------------------------------------------
# the decode harness
# --------------------------------------------------------------------------------------------------
def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def make_static_cache(model: nn.Module, batch: int, max_cache_len: int, device: torch.device,
                      dtype: torch.dtype):
    """``transformers.StaticCache`` for ``batch`` x ``max_cache_len`` (signature differs by version)."""
    from transformers import StaticCache

    params = inspect.signature(StaticCache.__init__).parameters
    kw: dict[str, Any] = {"config": model.config, "max_cache_len": max_cache_len}
    for k, v in (("max_batch_size", batch), ("batch_size", batch), ("device", device), ("dtype", dtype)):
        if k in params:
            kw[k] = v
    return StaticCache(**kw)


@dataclass
class GenResult:
    tokens: torch.Tensor  # (B, n) generated ids (the prefill's argmax first), on CPU
    prefill_ms: float
    step_ms: list[float]  # timed decode steps
    cuda_graph: bool
    logits: list[torch.Tensor] | None = None  # per generated token (B, V) float, when recorded
    first_logits: torch.Tensor | None = None  # (V,) float logits of batch row 0 after the prefill
    step1_logits: torch.Tensor | None = None  # (V,) after the first decode step (fast path, eager)
    breakdown: dict[str, float] | None = None  # profiler: ms per decode step per op class
    extra: dict[str, Any] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StaticDecoder:
    """Prefill + greedy decode of one model at one batch size against a static KV cache."""

    def __init__(self, model: nn.Module, batch: int, prompt_len: int, gen: int, device: torch.device,
                 dtype: torch.dtype):
        self.model, self.B, self.P, self.gen, self.device = model, batch, prompt_len, gen, device
        self.max_len = prompt_len + gen + SLACK
        self.cache = make_static_cache(model, batch, self.max_len, device, dtype)
        fwd = type(model).forward
        self.pass_cache_position = _accepts(fwd, "cache_position")
        self.pass_logits_to_keep = _accepts(fwd, "logits_to_keep")
        # static decode-step state
        self.tok = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.pos = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.cpos = torch.zeros(1, dtype=torch.long, device=device)
        self.step_idx = torch.zeros(1, dtype=torch.long, device=device)
        self.out = torch.zeros(batch, gen + 1 + SLACK, dtype=torch.long, device=device)
        self.last_logits: torch.Tensor | None = None
        self.step1_logits: torch.Tensor | None = None  # batch row 0 after the first decode step
        self.graph: torch.cuda.CUDAGraph | None = None

    def _forward(self, ids, pos, cpos) -> torch.Tensor:
        kw: dict[str, Any] = dict(input_ids=ids, position_ids=pos, past_key_values=self.cache, use_cache=True)
        if self.pass_cache_position:
            kw["cache_position"] = cpos
        if self.pass_logits_to_keep:
            kw["logits_to_keep"] = 1
        return self.model(**kw).logits[:, -1, :]

    def reset(self) -> None:
        self.cache.reset()

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        P = ids.shape[1]
        cpos = torch.arange(P, device=self.device)
        logits = self._forward(ids, cpos.unsqueeze(0).expand(ids.shape[0], P), cpos)
        self.last_logits = logits
        nxt = logits.argmax(-1, keepdim=True)
        self.tok.copy_(nxt)
        self.pos.fill_(P)
        self.cpos.fill_(P)
        self.out[:, 0:1].copy_(nxt)
        self.step_idx.fill_(1)
        return nxt

    def step(self) -> None:
        """One decode step; all state advances in place (this is what the CUDA graph captures)."""
        logits = self._forward(self.tok, self.pos, self.cpos)
        self.last_logits = logits
        if self.step1_logits is None and (self.device.type != "cuda"
                                          or not torch.cuda.is_current_stream_capturing()):
            self.step1_logits = logits[0].float().cpu()
        nxt = logits.argmax(-1, keepdim=True)
        self.out.index_copy_(1, self.step_idx, nxt)
        self.tok.copy_(nxt)
        self.pos.add_(1)
        self.cpos.add_(1)
        self.step_idx.add_(1)

    def capture(self, warmup: int = 2) -> int:
        """Run ``warmup`` real steps on a side stream, then capture :meth:`step`; returns steps done."""
        s = torch.cuda.Stream(self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(s):
            for _ in range(warmup):
                self.step()
        torch.cuda.current_stream(self.device).wait_stream(s)
        _sync(self.device)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            self.step()
        self.graph = g
        return warmup


def _time_prefill(dec: StaticDecoder, ids: torch.Tensor, reps: int) -> float:
    dev = dec.device
    times = []
    for r in range(reps + 1):  # first one is the warm-up
        dec.reset()
        _sync(dev)
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            dec.prefill(ids)
            b.record()
            b.synchronize()
            t = a.elapsed_time(b)
        else:
            t0 = time.perf_counter()
            dec.prefill(ids)
            t = (time.perf_counter() - t0) * 1e3
        if r or reps == 0:
            times.append(t)
    times.sort()
    return times[len(times) // 2]


def run_decode(model: nn.Module, ids: torch.Tensor, gen: int, device: torch.device, dtype: torch.dtype,
               prefill_reps: int = 3, use_graph: bool = True, record_logits: bool = False,
               profile_steps: int = 0) -> GenResult:
    """Prefill ``ids`` ``(B, P)`` then ``gen`` greedy decode steps; timings and tokens.

    On CUDA the decode step is captured in a CUDA graph (after two warm-up steps that are real decode
    steps, so every token is valid) and the remaining steps are timed replays.  ``record_logits``
    forces eager steps and keeps every step's logits (token checks).  ``profile_steps`` extra steps
    (run in the cache slack) are profiled for the op-class breakdown.
    """
    B, P = ids.shape
    dec = StaticDecoder(model, B, P, gen, device, dtype)
    graph_ok = use_graph and device.type == "cuda" and not record_logits
    if use_graph and device.type != "cuda":
        warnings.warn("CUDA graphs need a CUDA device: timing eager decode steps with the host clock",
                      RuntimeWarning, stacklevel=2)
    with torch.inference_mode():
        prefill_ms = _time_prefill(dec, ids, prefill_reps)
        dec.reset()
        dec.prefill(ids)
        first_logits = dec.last_logits[0].float().cpu()
        logits = [dec.last_logits.float().cpu()] if record_logits else None
        done = 0
        if graph_ok:
            try:
                done = dec.capture(warmup=2)
            except Exception as e:  # capture failed: redo everything eagerly
                warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: {e}); timing eager steps",
                              RuntimeWarning, stacklevel=2)
                graph_ok = False
                dec = StaticDecoder(model, B, P, gen, device, dtype)
                dec.prefill(ids)
                done = 0
        n = gen - done
        step_ms: list[float] = []
        if device.type == "cuda":
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(n + 1)]
            _sync(device)
            ev[0].record()
            for i in range(n):
                if graph_ok:
                    dec.graph.replay()
                else:
                    dec.step()
                    if record_logits:
                        logits.append(dec.last_logits.float().cpu())
                ev[i + 1].record()
            ev[-1].synchronize()
            step_ms = [ev[i].elapsed_time(ev[i + 1]) for i in range(n)]
        else:
            for _ in range(n):
                t0 = time.perf_counter()
                dec.step()
                if record_logits:
                    logits.append(dec.last_logits.float().cpu())
                step_ms.append((time.perf_counter() - t0) * 1e3)
        tokens = dec.out[:, : gen + 1].cpu()
        breakdown = None
        if profile_steps and device.type == "cuda":
            breakdown = profile_breakdown(dec, min(profile_steps, SLACK - 1), graph_ok)
    res = GenResult(tokens, prefill_ms, step_ms, graph_ok, logits, first_logits, dec.step1_logits, breakdown)
    del dec
    return res


@torch.inference_mode()
def reference_greedy(model: nn.Module, ids: torch.Tensor, n: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Greedy ``n`` tokens by full recomputation (no cache): the dense correctness oracle."""
    cur = ids
    toks, logits = [], []
    for _ in range(n):
        lg = model(input_ids=cur, use_cache=False).logits[:, -1, :]
        nxt = lg.argmax(-1, keepdim=True)
        toks.append(nxt)
        logits.append(lg.float().cpu())
        cur = torch.cat([cur, nxt], dim=1)
    return torch.cat(toks, dim=1).cpu(), logits


def compare_tokens(fast: torch.Tensor, ref: torch.Tensor, ref_logits: list[torch.Tensor] | None,
                   n: int, fast_first_logits: torch.Tensor | None = None,
                   fast_step1_logits: torch.Tensor | None = None) -> dict[str, Any]:
    """First-``n``-token identity of batch row 0, with the reference's logit margin at a divergence.

    ``logit_rel_err``: ``|l_fast - l_ref| / |l_ref|`` of the logits after the prefill (same input for
    both), which separates rounding noise (~1e-2 in bf16) from a wrong kernel (~1);
    ``logit_rel_err_decode``: the same after the first decode step (one-token input: the decode
    kernels), when the first generated token agrees;
    ``logit_std``: the spread of the reference logits there (the scale of the margins).
    """
    a, b = fast[0, :n], ref[0, :n]
    n = min(a.numel(), b.numel())
    diff = (a[:n] != b[:n]).nonzero()
    out: dict[str, Any] = {"tokens_checked": n, "tokens_identical": diff.numel() == 0,
                           "first_divergence": None, "divergence_margin": None}
    if fast_first_logits is not None and ref_logits:
        r0 = ref_logits[0][0].float()
        f0 = fast_first_logits.float()
        out["logit_rel_err"] = float((f0 - r0).norm() / r0.norm().clamp_min(1e-30))
        out["logit_std"] = float(r0.std())
    if fast_step1_logits is not None and ref_logits and len(ref_logits) > 1 and n > 1 and bool(a[0] == b[0]):
        r1 = ref_logits[1][0].float()
        out["logit_rel_err_decode"] = float((fast_step1_logits.float() - r1).norm() / r1.norm().clamp_min(1e-30))
    if diff.numel():
        i = int(diff[0])
        out["first_divergence"] = i
        if ref_logits is not None and i < len(ref_logits):
            lg = ref_logits[i][0]
            out["divergence_margin"] = float(lg[int(b[i])] - lg[int(a[i])])
            top2 = lg.topk(2).values
            out["ref_top2_margin"] = float(top2[0] - top2[1])
    return out


# --------------------------------------------------------------------------------------------------
# profiler breakdown
# --------------------------------------------------------------------------------------------------
OP_CLASSES = ("gemm_dense", "sparse_kernel", "attention", "act_quant", "other")
_SPARSE_PAT = re.compile(r"spense|sparse|cslt|mmasp|_sp_|sp_mma|decode_kernel", re.I)
_QUANT_PAT = re.compile(r"quant", re.I)
_ATTN_PAT = re.compile(r"flash|fmha|attention|attn|sdpa", re.I)
_GEMM_PAT = re.compile(r"gemm|gemv|cutlass|xmma|nvjet|cublas|scaled_mm|matmul|splitk|sm90_", re.I)


def classify_kernel(name: str) -> str:
    if _SPARSE_PAT.search(name):
        return "sparse_kernel"
    if _QUANT_PAT.search(name):
        return "act_quant"
    if _ATTN_PAT.search(name):
        return "attention"
    if _GEMM_PAT.search(name):
        return "gemm_dense"
    return "other"


def _kernel_times(prof) -> dict[str, float]:
    """``{kernel name: total device us}`` of the GPU activities in a torch profiler run."""
    from torch.autograd import DeviceType

    out: dict[str, float] = {}
    for e in prof.events():
        if getattr(e, "device_type", None) != DeviceType.CUDA:
            continue
        t = getattr(e, "device_time_total", None)
        if t is None:
            t = getattr(e, "cuda_time_total", 0.0)
        out[e.name] = out.get(e.name, 0.0) + float(t)
    return out


def profile_breakdown(dec: StaticDecoder, steps: int, graph_ok: bool) -> dict[str, Any]:
    """GPU time per op class per decode step (ms), profiling graph replays (eager steps if the
    profiler sees no kernels inside graphs)."""
    from torch.profiler import ProfilerActivity, profile

    def run(use_graph: bool, k: int):
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(k):
                dec.graph.replay() if use_graph else dec.step()
            _sync(dec.device)
        return _kernel_times(prof)

    half = max(1, steps // 2)
    mode = "graph"
    kt = run(True, half) if graph_ok else {}
    if not kt:
        mode = "eager"
        kt = run(False, half)
    cls = {c: 0.0 for c in OP_CLASSES}
    for name, us in kt.items():
        cls[classify_kernel(name)] += us
    out: dict[str, Any] = {c: cls[c] / half / 1e3 for c in OP_CLASSES}
    out["total"] = sum(cls.values()) / half / 1e3
    out["mode"] = mode
    top = sorted(kt.items(), key=lambda kv: -kv[1])[:8]
    out["top_kernels"] = [[n[:120], us / half / 1e3, classify_kernel(n)] for n, us in top]
    return out


# --------------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------------
def env_info(device: torch.device) -> dict[str, Any]:
    import transformers

    commit = os.environ.get("SPENSE_COMMIT")
    if not commit:
        try:
            root = Path(__file__).resolve().parents[2]
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                    text=True, timeout=10).stdout.strip() or "unknown"
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            if dirty and commit != "unknown":
                commit += "-dirty"
        except Exception:
            commit = "unknown"
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "device": dev,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------------------------------
# prompts and perplexity
# --------------------------------------------------------------------------------------------------
def make_prompts(model: nn.Module, batch: int, prompt_len: int, seed: int, text_ids: torch.Tensor | None,
                 device: torch.device) -> torch.Tensor:
    """``(batch, prompt_len)`` prompts: slices of ``text_ids`` when given, else seeded random ids."""
    if text_ids is not None and text_ids.numel() >= batch * prompt_len:
        return text_ids[: batch * prompt_len].reshape(batch, prompt_len).to(device)
    vocab = int(model.config.vocab_size)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, vocab, (batch, prompt_len), generator=g).to(device)


def _perplexity(model: nn.Module, windows: torch.Tensor, device: torch.device) -> float:
    from spense.evaluate import perplexity

    return float(perplexity(model, windows, device=device, progress=False)["perplexity"])


# --------------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------------
def _parse_dtype(d: str) -> str:
    d = d.strip().lower()
    alias = {"bfloat16": "bf16", "float8": "fp8", "e4m3": "fp8", "float32": "fp32"}
    d = alias.get(d, d)
    if d not in DTYPES:
        raise InputError(f"unknown dtype {d!r}; use bf16 or fp8 (fp32 for CPU tests)")
    return d


def run_bench(
    model: str | os.PathLike,
    dtypes: Iterable[str] | str = ("bf16",),
    batches: Iterable[int] = (1, 8, 32),
    prompt_len: int = 512,
    gen: int = 128,
    dense_ratios: Iterable[float] = (0.0, 0.25, 0.5),
    backend: str = "auto",
    out: str | os.PathLike | None = None,
    *,
    axis: str = "cols",
    block: int = 64,
    layers: int | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    check_tokens: int = 32,
    profile: bool = True,
    ppl_text: str | os.PathLike | None = None,
    ppl_seqlen: int = 512,
    ppl_windows: int | None = None,
    prefill_reps: int = 3,
    name: str | None = None,
    command: str | None = None,
    progress: bool = True,
    use_graph: bool = True,
    fused_ops: bool = True,
) -> list[dict[str, Any]]:
    """Benchmark the dense model and its Spense versions; returns one row per (dtype, variant, batch).

    Row keys: ``model, dtype, variant, dense_ratio`` (1.0 for the dense model, 0 = pure 2:4),
    ``batch, prompt_len, gen, backend, prefill_ms, decode_tok_s, token_ms_p50, token_ms_p99,
    speedup_vs_dense, prefill_speedup_vs_dense, peak_mem_gb, weight_bytes, linear_weight_bytes,
    cuda_graph, tokens_checked, tokens_identical, first_divergence, divergence_margin, perplexity,
    target, target_met, breakdown, backend_choice, fused_ops, attn_impl, device, date, commit, torch,
    transformers, command``.

    ``fused_ops`` (default): GQA decode attention without K/V copies and fused RMSNorm for every
    variant alike (see :mod:`spense.bench_ops`); ``False`` runs transformers' modules as they are.
    With ``out``, writes ``NAME.json``, ``NAME.md`` and ``NAME.png`` there (``NAME`` defaults to
    ``e2e_bench_<date>``).
    """
    if isinstance(dtypes, str):
        dtypes = dtypes.split(",")
    dtypes = [_parse_dtype(d) for d in dtypes]
    batches = [int(b) for b in batches]
    ratios = [float(r) for r in dense_ratios]
    if not batches or min(batches) <= 0:
        raise InputError(f"batch sizes must be positive, got {batches}")
    if prompt_len <= 0 or gen <= 2:
        raise InputError(f"need prompt_len > 0 and gen > 2, got {prompt_len}, {gen}")
    if axis not in ("rows", "cols"):
        raise InputError(f"axis must be rows or cols, got {axis!r}")
    for r in ratios:
        if not 0.0 <= r < 1.0:
            raise InputError(f"dense ratios must be in [0, 1), got {r}")
    from spense.runtime.linear import BACKENDS

    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    dev = _resolve_device(device)
    if "fp8" in dtypes and dev.type == "cuda" and torch.cuda.get_device_capability(dev) < (8, 9):
        raise SpenseError("FP8 needs an sm89+ GPU (Ada/Hopper)")
    info = env_info(dev)
    info["command"] = command or " ".join(shlex.quote(a) for a in sys.argv)

    base_dtype = torch.float32 if dtypes == ["fp32"] else torch.bfloat16
    if "fp32" in dtypes and len(dtypes) > 1:
        raise InputError("fp32 cannot be mixed with bf16/fp8 in one run")
    t0 = time.perf_counter()
    bm = load_bench_model(model, dev, base_dtype, seed=seed, layers=layers)
    _log(progress, f"model {bm.label} ({bm.source}) ready on {info['device']} in {time.perf_counter() - t0:.1f}s")
    lm = bm.model
    undo_norms: list = []
    if fused_ops:
        from spense.bench_ops import fuse_rmsnorms, use_gqa_attention

        use_gqa_attention(lm)
        undo_norms = fuse_rmsnorms(lm)
    info["fused_ops"] = bool(fused_ops)
    info["attn_impl"] = str(getattr(lm.config, "_attn_implementation", "?"))
    _log(progress, f"attention {info['attn_impl']}, fused RMSNorm x{len(undo_norms)}")
    if bm.manifest is not None:
        linears = {n: m for n, m in block_linears(lm, block=4).items() if n in bm.manifest["layers"]}
        layouts = {n: SpenseLayout.from_dict(bm.manifest["layers"][n]["layout"]) for n in linears}
        ck_ratio = sum(l.dense_ratio for l in layouts.values()) / max(1, len(layouts))
        ratios = [ck_ratio]
    else:
        linears = block_linears(lm, block=block)
        layouts = None
    if not linears:
        raise InputError(f"{bm.label}: no prunable linears found in the decoder blocks")
    sw = Swapper(lm, linears)

    # perplexity text (real models only)
    eval_windows = text_ids = None
    if ppl_text is not None and bm.model_dir is not None:
        from spense.data import eval_windows as _ew, load_tokenizer, read_text, tokenize

        tok = load_tokenizer(bm.model_dir)
        text_ids = tokenize(tok, read_text(ppl_text))
        eval_windows = _ew(text_ids, ppl_seqlen, ppl_windows)

    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        # the runtime warns once per layer about dense fallbacks; backend_choice in the rows summarises it
        warnings.filterwarnings("ignore", message=r"spense: .*dense fallback")
        warnings.filterwarnings("ignore", message=r".*Profiler clears events")
        _bench_loop(rows, lm, bm, sw, linears, layouts, dtypes, batches, ratios, prompt_len, gen, backend,
                    axis, block, dev, base_dtype, seed, check_tokens, profile, prefill_reps, use_graph,
                    eval_windows, text_ids, info, progress)
    if out is not None:
        write_reports(rows, out, name)
    return rows


def _bench_loop(rows, lm, bm, sw, linears, layouts, dtypes, batches, ratios, prompt_len, gen, backend, axis,
                block, dev, base_dtype, seed, check_tokens, profile, prefill_reps, use_graph, eval_windows,
                text_ids, info, progress) -> None:
    for dt in dtypes:
        fp8 = dt == "fp8"
        variants: list[tuple[str, float]] = [("dense", 1.0)] + [("spense", r) for r in ratios]
        dense_tok_s: dict[int, float] = {}
        dense_prefill: dict[int, float] = {}
        for vname, ratio in variants:
            sw.restore()
            _free(dev)
            t1 = time.perf_counter()
            _build_variant(sw, vname, ratio, fp8, backend, axis, block, layouts)
            _log(progress, f"{dt} {vname} r={ratio:g}: built in {time.perf_counter() - t1:.1f}s")
            wb, lwb = weight_bytes(lm, linears)
            aside = sw.aside_bytes()
            ppl = None
            if eval_windows is not None:
                ppl = _perplexity(lm, eval_windows, dev)
                _log(progress, f"{dt} {vname} r={ratio:g}: perplexity {ppl:.3f}")
            for bi, B in enumerate(batches):
                ids = make_prompts(lm, B, prompt_len, seed + B, text_ids, dev)
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                prof_steps = 8 if (profile and B <= TARGET_MAX_BATCH and dev.type == "cuda") else 0
                res = run_decode(lm, ids, gen, dev, base_dtype, prefill_reps=prefill_reps,
                                 use_graph=use_graph, profile_steps=prof_steps)
                peak = (torch.cuda.max_memory_allocated(dev) - aside) / 1e9 if dev.type == "cuda" else None
                ntok = B * len(res.step_ms)
                tok_s = ntok / (sum(res.step_ms) / 1e3) if res.step_ms else float("nan")
                row: dict[str, Any] = {
                    "model": bm.label, "dtype": dt, "variant": vname, "dense_ratio": ratio, "batch": B,
                    "prompt_len": prompt_len, "gen": gen,
                    "backend": "dense" if vname == "dense" else backend,
                    "prefill_ms": res.prefill_ms, "decode_tok_s": tok_s,
                    "token_ms_p50": _pct(res.step_ms, 0.5), "token_ms_p99": _pct(res.step_ms, 0.99),
                    "peak_mem_gb": peak, "weight_bytes": wb, "linear_weight_bytes": lwb,
                    "cuda_graph": res.cuda_graph, "perplexity": ppl,
                    "axis": None if vname == "dense" or layouts is not None else axis,
                }
                if vname == "dense":
                    dense_tok_s[B], dense_prefill[B] = tok_s, res.prefill_ms
                row["speedup_vs_dense"] = tok_s / dense_tok_s[B] if B in dense_tok_s else None
                row["prefill_speedup_vs_dense"] = (dense_prefill[B] / res.prefill_ms
                                                   if B in dense_prefill else None)
                tgt = TARGETS.get(dt) if (vname == "spense" and abs(ratio - TARGET_RATIO) < 1e-9
                                          and B <= TARGET_MAX_BATCH) else None
                row["target"] = tgt
                row["target_met"] = (row["speedup_vs_dense"] >= tgt) if tgt and row["speedup_vs_dense"] else None
                row["breakdown"] = res.breakdown
                if dt == "fp8" and vname == "dense" and dev.type == "cuda":
                    from spense.runtime.fp8 import _CHOICE

                    row["fp8_gemm_forms"] = {f"{n}x{k}@M<={b}": c for (n, k, b), c in _CHOICE.items()}
                if vname == "spense":
                    row["backend_choice"] = backend_summary(lm)
                # token identity (batch row 0 of the first batch size)
                if check_tokens and bi == 0:
                    row.update(_token_check(lm, vname, ids[:1], res.tokens, check_tokens, dev, base_dtype,
                                            backend, res.first_logits, res.step1_logits))
                row.update(info)
                rows.append(row)
                _log(progress, _row_line(row))
                del res
                _free(dev)
        sw.restore()
        _free(dev)


def _build_variant(sw: Swapper, vname: str, ratio: float, fp8: bool, backend: str, axis: str, block: int,
                   layouts: dict[str, SpenseLayout] | None) -> None:
    from spense.runtime.fp8 import Fp8Linear

    for name, lin in sw.originals.items():
        if vname == "dense":
            if fp8:
                sw.mount(name, Fp8Linear.from_linear(lin))
            continue
        if layouts is not None:
            lay = layouts[name]
            w = lin.weight.detach()
        else:
            w, lay = magnitude_spense(lin.weight.detach(), ratio, axis=axis, block=block)
        sw.mount(name, make_spense_linear(w, lin.bias, lay, backend, fp8, name))
        del w


def _token_check(lm: nn.Module, vname: str, ids1: torch.Tensor, fast_tokens: torch.Tensor, n: int,
                 dev: torch.device, dtype: torch.dtype, backend: str,
                 first_logits: torch.Tensor | None = None, step1_logits: torch.Tensor | None = None
                 ) -> dict[str, Any]:
    """Dense: harness tokens vs no-cache greedy.  Spense: fast backend vs ``reference`` backend."""
    n = min(n, fast_tokens.shape[1])
    if vname == "dense":
        ref, ref_logits = reference_greedy(lm, ids1, n)
        out = compare_tokens(fast_tokens[:1], ref, ref_logits, n, first_logits, step1_logits)
        out["token_reference"] = "no-cache greedy"
        return out
    set_backend(lm, "reference")
    try:
        r = run_decode(lm, ids1, max(n - 1, 3), dev, dtype, prefill_reps=0, use_graph=False,
                       record_logits=True)
    finally:
        set_backend(lm, backend)
    out = compare_tokens(fast_tokens[:1], r.tokens, r.logits, n, first_logits, step1_logits)
    out["token_reference"] = "reference backend"
    return out


def _variant(r: dict[str, Any]) -> str:
    """Variant label; Spense rows of the rows-axis fast pruning are marked ``spense/rows``."""
    return f"{r['variant']}/rows" if r.get("axis") == "rows" and r["variant"] != "dense" else r["variant"]


def _row_line(r: dict[str, Any]) -> str:
    s = (f"{r['dtype']} {_variant(r):<6} r={r['dense_ratio']:<5g} B={r['batch']:<3} "
         f"prefill {r['prefill_ms']:8.2f} ms  decode {r['decode_tok_s']:9.1f} tok/s  "
         f"p50 {r['token_ms_p50']:.3f} ms")
    if r.get("speedup_vs_dense") is not None and r["variant"] != "dense":
        s += f"  x{r['speedup_vs_dense']:.3f}"
    if r.get("tokens_checked"):
        s += f"  tokens {'==' if r['tokens_identical'] else '!='}"
    return s


# --------------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------------
def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.{nd}f}"
    return str(v)


def markdown_report(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    r0 = rows[0]
    lines = [f"# End-to-end decode benchmark: {', '.join(sorted({r['model'] for r in rows}))}", ""]
    metas = sorted({(r.get("device"), r.get("date"), r.get("commit"), r.get("torch"), r.get("transformers"),
                     r.get("command")) for r in rows}, key=str)
    for dev, date, commit, tv, hv, cmd in metas:
        lines += [f"* device: {dev}; date: {date}; commit: {commit}; torch {tv}; transformers {hv}",
                  f"* command: `{cmd}`"]
    lines += [f"* prompt {r0['prompt_len']} tokens, {r0['gen']} greedy decode tokens, static KV cache, "
              f"decode step in a CUDA graph ({'yes' if all(r['cuda_graph'] for r in rows) else 'NOT everywhere: see column'})",
              f"* attention: {', '.join(sorted({str(r.get('attn_impl')) for r in rows}))}; fused ops (GQA decode "
              f"attention without K/V copies + fused RMSNorm, all variants): "
              f"{', '.join(sorted({_fmt(r.get('fused_ops')) for r in rows}))}",
              "", "## Results", "",
              "| model | dtype | variant | dense ratio | batch | prefill ms | decode tok/s | speedup vs dense "
              "| prefill speedup | token ms p50 | p99 | peak GB | weights GB (linears) | graph | tokens ==ref (n) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tok = "-"
        if r.get("tokens_checked"):
            tok = f"{'yes' if r['tokens_identical'] else 'no @' + str(r['first_divergence'])} ({r['tokens_checked']})"
        lines.append(
            f"| {r['model']} | {r['dtype']} | {_variant(r)} | {_fmt(r['dense_ratio'])} | {r['batch']} "
            f"| {_fmt(r['prefill_ms'])} | {_fmt(r['decode_tok_s'], 1)} | {_fmt(r.get('speedup_vs_dense'), 3)} "
            f"| {_fmt(r.get('prefill_speedup_vs_dense'), 3)} | {_fmt(r['token_ms_p50'], 3)} "
            f"| {_fmt(r['token_ms_p99'], 3)} | {_fmt(r.get('peak_mem_gb'))} "
            f"| {r['weight_bytes'] / 1e9:.3f} ({r['linear_weight_bytes'] / 1e9:.3f}) | {_fmt(r['cuda_graph'])} "
            f"| {tok} |")
    tg = [r for r in rows if r.get("target")]
    if tg:
        lines += ["", "## Targets (decode tok/s speed-up at dense ratio 0.25, batch <= 8)", "",
                  "| model | dtype | batch | speedup | target | met |", "|---|---|---|---|---|---|"]
        for r in tg:
            lines.append(f"| {r['model']} | {r['dtype']} | {r['batch']} | {_fmt(r['speedup_vs_dense'], 3)} "
                         f"| {r['target']:.2f} | {_fmt(r['target_met'])} |")
    div = [r for r in rows if r.get("tokens_checked") and not r.get("tokens_identical")]
    if div:
        lines += ["", "## Token divergences", "",
                  "| model | dtype | variant | dense ratio | reference | first divergence | ref logit margin "
                  "(ref tok - fast tok) | ref top-2 margin | logit rel. err. prefill | logit rel. err. 1st decode "
                  "step | ref logit std |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in div:
            lines.append(f"| {r['model']} | {r['dtype']} | {_variant(r)} | {_fmt(r['dense_ratio'])} "
                         f"| {r.get('token_reference')} | {r['first_divergence']} "
                         f"| {_fmt(r.get('divergence_margin'), 4)} | {_fmt(r.get('ref_top2_margin'), 4)} "
                         f"| {_fmt(r.get('logit_rel_err'), 4)} | {_fmt(r.get('logit_rel_err_decode'), 4)} "
                         f"| {_fmt(r.get('logit_std'), 3)} |")
    bd = [r for r in rows if r.get("breakdown")]
    if bd:
        lines += ["", "## Decode GPU time per step by op class (torch profiler, ms)", "",
                  "| model | dtype | variant | dense ratio | batch | " + " | ".join(OP_CLASSES) + " | total | mode |",
                  "|---|---|---|---|---|" + "---|" * (len(OP_CLASSES) + 2)]
        for r in bd:
            b = r["breakdown"]
            lines.append(f"| {r['model']} | {r['dtype']} | {_variant(r)} | {_fmt(r['dense_ratio'])} | {r['batch']} | "
                         + " | ".join(_fmt(b.get(c), 3) for c in OP_CLASSES)
                         + f" | {_fmt(b.get('total'), 3)} | {b.get('mode')} |")
    pp = {}
    for r in rows:
        if r.get("perplexity") is not None:
            pp[(r["model"], r["dtype"], r["variant"], r["dense_ratio"])] = r["perplexity"]
    if pp:
        lines += ["", "## Perplexity", "", "| model | dtype | variant | dense ratio | perplexity |",
                  "|---|---|---|---|---|"]
        for (m, d, v, dr), p in pp.items():
            lines.append(f"| {m} | {d} | {v} | {_fmt(dr)} | {p:.3f} |")
    return "\n".join(lines) + "\n"


def plot_report(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """Decode tok/s and speed-up vs dense per batch size, one column per (model, dtype)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # pragma: no cover
        warnings.warn("matplotlib is not installed: no plot written", RuntimeWarning, stacklevel=2)
        return None
    groups = sorted({(r["model"], r["dtype"]) for r in rows}, key=str)
    fig, axes = plt.subplots(2, len(groups), figsize=(5 * len(groups), 7), squeeze=False)
    for j, (m, d) in enumerate(groups):
        rs = [r for r in rows if r["model"] == m and r["dtype"] == d]
        batches = sorted({r["batch"] for r in rs})
        vs = sorted({(_variant(r), r["dense_ratio"]) for r in rs}, key=lambda v: (v[0] != "dense", v[0], v[1]))
        x = range(len(batches))
        width = 0.8 / max(1, len(vs))
        for k, (v, dr) in enumerate(vs):
            lab = "dense" if v == "dense" else ("2:4" if dr == 0 else f"{v} r={dr:g}")
            tok = [next((r["decode_tok_s"] for r in rs if r["batch"] == b and _variant(r) == v
                         and r["dense_ratio"] == dr), float("nan")) for b in batches]
            sp = [next((r.get("speedup_vs_dense") or float("nan") for r in rs if r["batch"] == b
                        and _variant(r) == v and r["dense_ratio"] == dr), float("nan")) for b in batches]
            axes[0][j].plot(list(x), tok, marker="o", label=lab)
            axes[1][j].bar([i + (k - (len(vs) - 1) / 2) * width for i in x], sp, width, label=lab)
        tgt = TARGETS.get(d)
        if tgt:
            axes[1][j].axhline(tgt, color="k", ls="--", lw=1, label=f"target {tgt}x (r=0.25, B<=8)")
        axes[1][j].axhline(1.0, color="gray", lw=0.8)
        for i in range(2):
            axes[i][j].set_xticks(list(x))
            axes[i][j].set_xticklabels([str(b) for b in batches])
            axes[i][j].set_xlabel("batch")
        axes[0][j].set_yscale("log")
        axes[0][j].set_ylabel("decode tokens/s")
        axes[1][j].set_ylabel("decode speed-up vs dense")
        axes[0][j].set_title(f"{m} {d}")
        axes[0][j].legend(fontsize=8)
        axes[1][j].legend(fontsize=7)
    dev = rows[0].get("device", "")
    fig.suptitle(f"spense bench - {dev} - {rows[0].get('date', '')} - {rows[0].get('commit', '')}", fontsize=9)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, torch.Tensor):
        return v.tolist()
    return v


def write_reports(rows: list[dict[str, Any]], out: str | os.PathLike, name: str | None = None) -> dict[str, Path]:
    """``NAME.json`` (list of rows), ``NAME.md`` and ``NAME.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"e2e_bench_{_dt.date.today().isoformat()}"
    paths = {"json": out / f"{name}.json", "md": out / f"{name}.md", "png": out / f"{name}.png"}
    paths["json"].write_text(json.dumps(_jsonable(rows), indent=1) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown_report(rows), encoding="utf-8")
    if rows and plot_report(rows, paths["png"]) is None:
        paths.pop("png")
    return paths


def merge_reports(json_paths: Iterable[str | os.PathLike], out: str | os.PathLike, name: str | None = None
                  ) -> dict[str, Path]:
    """Concatenate the rows of several result JSONs (e.g. separate GPU runs) into one report."""
    rows: list[dict[str, Any]] = []
    for p in json_paths:
        rows += json.loads(Path(p).read_text(encoding="utf-8"))
    return write_reports(rows, out, name)


# --------------------------------------------------------------------------------------------------
# CLI (registered by spense.cli as ``app.command("bench")(bench_command)``)
# --------------------------------------------------------------------------------------------------
def _split(s: str, conv: Callable[[str], Any], what: str, allow_empty: bool = False) -> list[Any]:
    if allow_empty and str(s).strip().lower() in ("", "none"):
        return []
    try:
        vals = [conv(x) for x in str(s).split(",") if x.strip()]
    except ValueError as e:
        raise InputError(f"{what}: cannot parse {s!r} as a comma-separated list ({e})") from e
    if not vals:
        raise InputError(f"{what}: empty list")
    return vals


def bench_command(
    model: str = typer.Argument(..., help="Local HF model dir, Spense checkpoint dir (spense.json), config.json, "
                                          "or a built-in shape: qwen3-8b, qwen3-32b, qwen3-32b[:16] (first 16 "
                                          "layers), qwen3-tiny. Built-in shapes get random weights."),
    dtype: str = typer.Option("bf16", "--dtype", help="bf16, fp8, or both: bf16,fp8"),
    batch: str = typer.Option("1,8,32", "--batch", help="comma-separated batch sizes"),
    prompt_len: int = typer.Option(512, "--prompt-len", help="prompt tokens (prefill)"),
    gen: int = typer.Option(128, "--gen", help="greedy decode steps"),
    dense_ratio: str = typer.Option("0,0.25,0.5", "--dense-ratio",
                                    help="Spense dense ratios (0 = pure 2:4; 'none' = dense model only); "
                                         "ignored for a Spense checkpoint"),
    backend: str = typer.Option("auto", "--backend", help="reference | cusparselt | triton | mmasp | auto"),
    out: Optional[Path] = typer.Option(None, "--out", help="write NAME.json/.md/.png here"),
    name: Optional[str] = typer.Option(None, "--name", help="file stem (default e2e_bench_<date>)"),
    axis: str = typer.Option("cols", "--axis", help="dense region axis for the fast pruning: cols or rows"),
    block: int = typer.Option(64, "--block", help="dense region block size"),
    layers: Optional[int] = typer.Option(None, "--layers", help="use only the first N decoder layers"),
    check_tokens: int = typer.Option(32, "--check-tokens", help="greedy tokens compared with the reference (0: off)"),
    profile: bool = typer.Option(True, "--profile/--no-profile", help="profiler op-class breakdown at batch <= 8"),
    ppl_text: Optional[Path] = typer.Option(None, "--ppl-text", help="text for perplexity (real models only)"),
    ppl_seqlen: int = typer.Option(512, "--ppl-seqlen"),
    ppl_windows: Optional[int] = typer.Option(None, "--ppl-windows", help="cap on evaluation windows"),
    prefill_reps: int = typer.Option(3, "--prefill-reps"),
    fused_ops: bool = typer.Option(True, "--fused-ops/--hf-ops",
                                   help="GQA decode attention without K/V copies + fused RMSNorm, for every "
                                        "variant alike (--hf-ops: transformers' modules as they are)"),
    device: str = typer.Option("auto", "--device", help="auto, cuda, cpu"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """End-to-end decode benchmark: dense vs Spense (vs pure 2:4), BF16 / FP8, one table."""

    def _run() -> None:
        rows = run_bench(
            model, dtypes=_split(dtype, str, "--dtype"), batches=_split(batch, int, "--batch"),
            prompt_len=prompt_len, gen=gen, dense_ratios=_split(dense_ratio, float, "--dense-ratio", allow_empty=True),
            backend=backend, out=out, axis=axis, block=block, layers=layers, device=device, seed=seed,
            check_tokens=check_tokens, profile=profile, ppl_text=ppl_text, ppl_seqlen=ppl_seqlen,
            ppl_windows=ppl_windows, prefill_reps=prefill_reps, name=name, fused_ops=fused_ops,
            command="spense bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
        )
        print(markdown_report(rows))

    try:
        from spense.cli import handle_errors
    except ImportError:  # pragma: no cover
        handle_errors = None
    if handle_errors is not None:
        handle_errors(_run)()
        return
    try:  # pragma: no cover
        _run()
    except SpenseError as e:  # pragma: no cover
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(2) from None


def main(argv: list[str] | None = None) -> None:
    """``python -m spense.bench MODEL ...`` (same options as ``spense bench``), or
    ``python -m spense.bench merge A.json B.json --out DIR [--name NAME]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        import argparse

        ap = argparse.ArgumentParser(prog="python -m spense.bench merge")
        ap.add_argument("json", nargs="+")
        ap.add_argument("--out", required=True)
        ap.add_argument("--name", default=None)
        a = ap.parse_args(argv[1:])
        for k, p in merge_reports(a.json, a.out, a.name).items():
            print(f"{k}: {p}")
        return
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench_command)
    sys.argv = ["spense bench"] + argv  # so the recorded command reads like the CLI
    sys.argv.insert(1, "bench")
    app(argv, prog_name="spense bench")


if __name__ == "__main__":
    main()
