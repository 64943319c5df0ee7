"""Prefill, the decode step, sampling, and the generation loop (gpt-fast style).

The decode step (model forward, sampling, all in one function) is compiled with ``torch.compile``
(the options of ``mode="reduce-overhead"``: Inductor fuses norms, RoPE, residuals and sampling; the
step runs as a CUDA graph).  Positions are read from a device tensor, so a step needs no host sync,
and :meth:`Engine.stream` queues step i+1 before it waits for step i's tokens.  Shapes are static
per (batch bucket, attention-length bucket), so each bucket gets its own compiled graph: batch sizes
are padded up to a power of two (:func:`batch_bucket`), the attention length to a multiple of
:data:`~spense.engine.model.KV_BLOCK`.  Prefill is compiled the same way per (batch bucket, prompt
bucket).  Without compilation on CUDA the eager step is captured in a plain ``torch.cuda.CUDAGraph``
per bucket; on CPU everything runs eagerly.  ``graph="plain"`` (``$SPENSE_GRAPH``) captures the compiled step in
such a plain graph too, in place of Inductor's CUDA graph trees: a step then costs the host one graph launch and
three input copies, where the trees check their guards and inputs on every call.

Sampling: greedy ``argmax(l)``; otherwise ``p = softmax(l / T)``, restricted to the smallest set of
most likely tokens whose mass reaches ``top_p`` (renormalised), and drawn as ``argmax(p / E)`` with
``E ~ Exp(1)`` i.i.d. (equivalent to sampling from ``p``, without a host sync).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from spense.engine.model import KV_BLOCK, Transformer, dense_weights
from spense.runtime import dense
from spense.runtime.attention import pdl_capable
from spense.runtime.fp8 import Fp8Linear
from spense.runtime.linear import SpenseLinear
from spense.runtime.shapes import bucket
from spense.runtime.timing import capture
from spense.errors import InputError

PROMPT_BLOCK = 64  # prompts are left-padded to a multiple of this (prefill bucket)
ATTENTION = ("auto", "math", "matmul", "split")  # Engine(attention=...)


def batch_bucket(b: int) -> int:
    """The batch bucket: :func:`spense.runtime.shapes.bucket` (the one power-of-two rule)."""
    return bucket(b)


def plan_decode(model: torch.nn.Module, max_batch: int, fragments: bool = True) -> None:
    """:meth:`SpenseLinear.plan` of every Spense layer for the decode batch buckets up to ``max_batch``
    (``fragments``: x in the kernel's fragment order, built where torch.compile fuses it), and
    :meth:`Fp8Linear.tune` of every FP8 layer that runs (a fused one included), and
    :func:`spense.runtime.dense.tune` of every plain weight's shape, given one weight of that shape to time
    (:func:`~spense.engine.model.dense_weights`), so that no kernel choice is measured while a step is traced."""
    ms = [b for b in (1, 2, 4, 8, 16, 32, 64) if b <= batch_bucket(max_batch)]
    for mod in model.modules():
        if isinstance(mod, SpenseLinear):
            mod.plan(ms, fragments)
        elif isinstance(mod, Fp8Linear) and not getattr(mod, "_fused", False):
            mod.tune(tuple(ms))
    emb = model.model.embed_tokens.weight
    weights = dense_weights(model)
    for N, K in sorted(weights):  # every bucket to 64: a short prompt's prefill is such an M too
        dense.tune(N, K, emb.device, dtype=emb.dtype, weight=weights[N, K])


def pdl_wanted(device: torch.device) -> bool:
    """Inductor's Triton kernels launched with programmatic dependent launch (each may start while the
    kernel before it finishes, and waits with ``gdc_wait`` before reading what that one wrote): on
    sm_90+ CUDA (not ROCm) where this torch has the option, unless ``SPENSE_PDL=0``
    (``TORCHINDUCTOR_ENABLE_PDL=1`` turns it on regardless).  So far measured on the H200 at 8B[:12],
    B = 1, BF16 only (through that variable): the decode step went from 1.885 to 1.794 ms (dense) and
    from 1.660 to 1.565 ms (Spense 25 %), tokens unchanged
    (benchmarks/results/e2e_v12_2026-12-01/d0_8b12_pdl)."""
    import torch._inductor.config as ic

    if os.environ.get("SPENSE_PDL", "1") == "0" or not hasattr(ic.triton, "enable_pdl"):
        return False
    return pdl_capable(device)


def default_attention(model: Transformer, cuda: bool, compiled: bool) -> str:
    """``"split"`` on CUDA where the head dim suits the split-KV kernel (a power of two >= 16): it ran
    the Qwen3-8B[:12] decode step 6–7 % (B = 1), 20–23 % (B = 8) and 43–52 % (B = 32) faster than the
    math backend on the H200
    (benchmarks/results/e2e_v9_2026-11-30); else ``"math"`` when compiling, ``"auto"`` otherwise."""
    hd = model.args.head_dim
    if cuda and hd >= 16 and not hd & (hd - 1):
        return "split"
    return "math" if compiled else "auto"


def round_up(n: int, m: int) -> int:
    """``n`` rounded up to a multiple of ``m`` (cache and prompt blocks)."""
    return -(-n // m) * m


ARGMAX_SLICES = 64


def argmax_last(x: torch.Tensor, slices: int = ARGMAX_SLICES) -> torch.Tensor:
    """``x.argmax(-1, keepdim=True)`` (the first maximum) in two stages: ``m_j, i_j`` = the max of slice
    ``j`` of the last dim and its first index there; ``j* = argmax_j m_j`` (the first slice holding the
    overall max); the answer is ``j* w + i_j*`` with ``w`` the slice width (the tail padded with -inf).
    Inductor turns one long row into one program's serial reduction (32 µs per step for Qwen3's
    151,936 logits at B = 1 on the H200, e2e v9 profile); the slices reduce in parallel."""
    V = x.shape[-1]
    if V < 4 * slices:
        return x.argmax(-1, keepdim=True)
    w = -(-V // slices)
    xp = torch.nn.functional.pad(x, (0, w * slices - V), value=float("-inf")).view(*x.shape[:-1], slices, w)
    m, i = xp.max(-1)
    j = m.argmax(-1, keepdim=True)
    return j * w + i.gather(-1, j)


def sample(logits: torch.Tensor, temperature: float = 0.0, top_p: float = 1.0) -> torch.Tensor:
    """Next token ``(B, 1)`` from ``logits`` ``(B, V)`` (see the module doc)."""
    if temperature <= 0.0:
        return argmax_last(logits)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        drop = (sp.cumsum(-1) - sp) >= top_p  # tokens after the mass already reached top_p
        sp = sp.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, si, sp)
        probs = probs / probs.sum(-1, keepdim=True)
    e = torch.empty_like(probs).exponential_(1.0)
    return argmax_last(probs / e)


def decode_step(model: Transformer, tok: torch.Tensor, input_pos: torch.Tensor, start: torch.Tensor,
                kv_len: int, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One token for every row: ``(next (B, 1), logits (B, V))``."""
    logits = model(tok, input_pos, kv_len, start)[:, -1]
    return sample(logits, temperature, top_p), logits


def prefill_step(model: Transformer, ids: torch.Tensor, input_pos: torch.Tensor, start: torch.Tensor,
                 kv_len: int, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A prompt's next token for every row: the LM head reads the last position only."""
    logits = model(ids, input_pos, kv_len, start, last=True)[:, -1]
    return sample(logits, temperature, top_p), logits


GRAPHS = ("tree", "plain")  # Engine(graph=...)


class _Graphed:
    """A function of static-shape tensors captured in one ``torch.cuda.CUDAGraph`` (eager or compiled code).
    Graphs of one engine share ``pool``: each replay's outputs are cloned before the next replay is queued."""

    def __init__(self, fn: Callable, args: tuple, consts: tuple, pool=None):
        self.fn, self.consts = fn, consts
        self.inputs = [a.clone() for a in args]
        run = lambda: fn(*self.inputs, *consts)  # noqa: E731
        self.graph, self.out = capture(run, lambda: (run(), run()), pool)

    def __call__(self, *args):
        for dst, src in zip(self.inputs, args):
            dst.copy_(src)
        self.graph.replay()
        return self.out


@dataclass
class Generation:
    tokens: list[list[int]]  # generated ids per prompt (without the prompt)
    prefill_s: float
    decode_s: float
    steps: int
    stopped: str = "length"  # "length" | "eos" | "interrupted"
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        """Decode tokens a second: each row's tokens after its first (which the prefill gives), over ``decode_s``."""
        n = sum(max(len(t) - 1, 0) for t in self.tokens)
        return n / self.decode_s if self.decode_s > 0 else float("nan")


class Engine:
    """Generation with one model: static KV cache, compiled / graphed steps per bucket."""

    def __init__(self, model: Transformer, max_batch: int, max_len: int, compile: bool = True,
                 compile_prefill: bool = True, cuda_graph: bool = True, fuse: bool = True,
                 attention: str | None = None, tuning: bool | None = None, max_autotune: bool | None = None,
                 graph: str | None = None):
        """``attention``: ``"auto"`` (SDPA, torch picks the kernel), ``"math"`` (SDPA's math backend,
        which Inductor fuses, in float32), ``"matmul"`` (two batched GEMMs in the cache dtype) or
        ``"split"`` (decode through the split-KV kernel; :meth:`Transformer.set_attention`); default:
        ``$SPENSE_ATTENTION``, else :func:`default_attention`.
        ``tuning``: Inductor's coordinate-descent tuning (default: ``$SPENSE_TUNING``, else off).  It
        also turns the M = 1 matmuls of plain linears into Triton reductions, which ran the dense
        Qwen3-8B[:12] step 10 % slower than cuBLAS on the H200 (2.30 vs 2.09 ms) and left Spense
        unchanged (benchmarks/results/e2e_v8_2026-11-30).
        ``max_autotune``: Inductor's max-autotune for the compiled decode step (default:
        ``$SPENSE_MAX_AUTOTUNE``, else off): each plain matmul timed against Inductor's Triton templates at
        compile time, the fastest kept, and Inductor's own kernels' configs tuned too; what a user would try for a
        faster dense model.  Dense Qwen3-8B on the
        H200 (benchmarks/results/wgsd_2026-12-03 k): 4.633 -> 5.434 ms at batch 1, 5.067 -> 4.997 at batch 8.
        ``graph``: how a compiled step is graphed on CUDA: ``"tree"`` (Inductor's CUDA graph trees,
        ``mode="reduce-overhead"``) or ``"plain"`` (Inductor without its graphs, the compiled step captured in one
        ``torch.cuda.CUDAGraph`` per bucket, all in one memory pool); default ``$SPENSE_GRAPH``, else ``"tree"``.
        :attr:`graph` is what runs: the kind, or None where nothing is graphed."""
        self.model = model
        if fuse:  # q/k/v and gate/up of plain linears through one GEMM each
            model.fuse_projections()
        self.device = model.model.embed_tokens.weight.device
        limit = model.args.max_positions
        if max_len > limit:
            raise InputError(f"cache of {max_len} tokens exceeds the model's {limit} positions")
        self.max_batch = batch_bucket(max_batch)
        self.max_len = round_up(max_len, KV_BLOCK)
        model.setup_caches(self.max_batch, self.max_len)
        cuda = self.device.type == "cuda"
        if cuda:  # fix each Spense layer's kernel per decode bucket before anything is compiled
            plan_decode(model, self.max_batch, fragments=compile)
        self.compiled = compile and cuda
        kind = graph or os.environ.get("SPENSE_GRAPH") or "tree"
        if kind not in GRAPHS:
            raise InputError(f"graph must be one of {', '.join(GRAPHS)}, got {kind!r}")
        # a plain graph per bucket: the eager step's, or the compiled step's where asked for
        plain = cuda_graph and cuda and (not self.compiled or kind == "plain")
        self.graph = "plain" if plain else ("tree" if self.compiled else None)
        self._pool = torch.cuda.graph_pool_handle() if plain else None
        self._plain: set[str] = set()  # what runs in a plain graph: not an eager prefill beside a compiled step
        if plain:
            self._plain = {"decode", "prefill"} if compile_prefill or not self.compiled else {"decode"}
        self.attention = attention or os.environ.get("SPENSE_ATTENTION") or default_attention(model, cuda,
                                                                                              self.compiled)
        if self.attention not in ATTENTION:
            raise InputError(f"attention must be one of {', '.join(ATTENTION)}, got {self.attention!r}")
        model.set_attention(self.attention if self.attention in ("matmul", "split") else "sdpa")
        if tuning is None:
            tuning = os.environ.get("SPENSE_TUNING", "0") != "0"
        self.tuning = bool(tuning) and self.compiled
        if max_autotune is None:
            max_autotune = os.environ.get("SPENSE_MAX_AUTOTUNE", "0") != "0"
        self.max_autotune = bool(max_autotune) and self.compiled
        import torch._inductor.config as ic

        # on where asked for, or already on through TORCHINDUCTOR_ENABLE_PDL=1 (what the rows record)
        self.pdl = self.compiled and (pdl_wanted(self.device)
                                      or bool(getattr(ic.triton, "enable_pdl", False)))
        # positions live on the device: a step reads its slot from here, no host-to-device copy (which
        # would wait for the GPU and stop the host from queueing the next step while this one runs)
        self._positions = torch.arange(self.max_len, device=self.device)
        self._decode, self._prefill = decode_step, prefill_step
        if self.compiled:
            import torch._dynamo as dynamo

            dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
            # mode="reduce-overhead" is options={"triton.cudagraphs": True}; the options form also takes the tuning
            opts = {"triton.cudagraphs": self.graph == "tree", "coordinate_descent_tuning": self.tuning}
            if self.pdl:
                opts["triton.enable_pdl"] = True
            dopts = (dict(opts, max_autotune=True, max_autotune_gemm_backends="ATEN,TRITON") if self.max_autotune
                     else opts)
            self._decode = torch.compile(decode_step, options=dopts, fullgraph=True, dynamic=False)
            if compile_prefill:
                self._prefill = torch.compile(prefill_step, options=opts, fullgraph=True, dynamic=False)
        self._captured: dict[tuple, _Graphed] = {}

    @property
    def graphs(self) -> bool:
        """Whether steps run in plain CUDA graphs of the engine's own (:attr:`graph` ``"plain"``)."""
        return self.graph == "plain"

    def _attention(self):
        if self.attention == "math":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            return sdpa_kernel(SDPBackend.MATH)
        return contextlib.nullcontext()

    def _run(self, kind: str, fn: Callable, tensors: tuple, kv_len: int, temperature: float, top_p: float):
        consts = (kv_len, float(temperature), float(top_p))
        with self._attention():
            if kind in self._plain:
                key = (kind, tuple(t.shape for t in tensors), consts)
                if key not in self._captured:
                    graphed = _Graphed(lambda *a: fn(self.model, *a), tensors, consts, self._pool)
                    self._captured[key] = graphed
                out = self._captured[key](*tensors)
            else:
                out = fn(self.model, *tensors, *consts)
        return out[0].clone(), out[1].clone()

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]], temperature: float = 0.0, top_p: float = 1.0):
        """Left-pad ``prompts`` into one ``(Bb, T)`` batch and run it; ``(next, logits, start, T)``."""
        B = len(prompts)
        if not 1 <= B <= self.max_batch:
            raise InputError(f"batch of {B} prompts; this engine holds 1..{self.max_batch}")
        Bb = batch_bucket(B)
        longest = max(len(p) for p in prompts)
        if longest == 0:
            raise InputError("empty prompt")
        T = round_up(longest, PROMPT_BLOCK)
        if T >= self.max_len:
            raise InputError(f"prompt of {longest} tokens does not fit the cache of {self.max_len} tokens")
        ids = torch.zeros(Bb, T, dtype=torch.long)
        start = torch.full((Bb,), T - 1, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, T - len(p):] = torch.tensor(p, dtype=torch.long)
            start[i] = T - len(p)
        ids, start = ids.to(self.device), start.to(self.device)
        pos = self._positions[:T]
        nxt, logits = self._run("prefill", self._prefill, (ids, pos, start), round_up(T, KV_BLOCK),
                                temperature, top_p)
        return nxt, logits, start, T

    @torch.inference_mode()
    def step(self, tok: torch.Tensor, pos: int, start: torch.Tensor, temperature: float = 0.0,
             top_p: float = 1.0):
        """Decode one token per row at cache slot ``pos``: ``(next (Bb, 1), logits)``."""
        if pos >= self.max_len:
            raise InputError(f"cache full ({self.max_len} tokens)")
        ip = self._positions[pos:pos + 1]
        return self._run("decode", self._decode, (tok, ip, start), min(round_up(pos + 1, KV_BLOCK), self.max_len),
                         temperature, top_p)

    def _to_host(self, t: torch.Tensor):
        """``(t on the host, event)``: on CUDA a non-blocking copy into pinned memory and the event to
        wait on before reading it (a blocking copy would also wait for every step queued after it)."""
        if t.device.type != "cuda":
            return t, None
        host = t.to("cpu", non_blocking=True)
        ev = torch.cuda.Event()
        ev.record()
        return host, ev

    def stream(self, prompts: list[list[int]], max_new: int, temperature: float = 0.0, top_p: float = 1.0,
               eos: int | Sequence[int] | None = None, timing: dict | None = None) -> Iterator[list[int]]:
        """Yield the new token of every prompt, step by step, until ``max_new``, or every row hit ``eos`` (a stop
        id, or several: Llama 3's instruct models end a turn with ``<|eot_id|>``, their text with
        ``<|end_of_text|>``). ``timing`` (if given) receives ``prefill_s`` and ``decode_s`` (device-synchronised)."""
        stops = _stop_ids(eos)
        B = len(prompts)
        t0 = time.perf_counter()
        nxt, _, start, T = self.prefill(prompts, temperature, top_p)
        room = self.max_len - T
        if max_new > room:
            raise InputError(f"{max_new} new tokens after a {T}-slot prompt do not fit the cache of "
                             f"{self.max_len} tokens; ask for at most {room}")
        done = torch.zeros(B, dtype=torch.bool)
        first = nxt[:B, 0].tolist()
        if timing is not None:
            timing["prefill_s"] = time.perf_counter() - t0
            timing["decode_s"] = 0.0
        yield first
        if stops is not None:
            done |= torch.isin(torch.tensor(first), stops)
            if bool(done.all()):
                return
        t1 = time.perf_counter()
        # one step ahead: step i+1 is queued on the GPU before the host waits for step i's tokens, so
        # the GPU never idles while the host streams (a row that hit eos costs at most one extra step)
        pending = self.step(nxt, T, start, temperature, top_p)[0] if max_new > 1 else None
        for i in range(1, max_new):
            cur = pending
            host, ready = self._to_host(cur[:B, 0])  # queued before step i+1, so it waits for step i only
            pending = self.step(cur, T + i, start, temperature, top_p)[0] if i + 1 < max_new else None
            if ready is not None:
                ready.synchronize()
            toks = host.tolist()
            if timing is not None:
                timing["decode_s"] = time.perf_counter() - t1
                timing["steps"] = i
            yield toks
            if stops is not None:
                done |= torch.isin(torch.tensor(toks), stops)
                if bool(done.all()):
                    break

    def generate(self, prompts: list[list[int]], max_new: int, temperature: float = 0.0, top_p: float = 1.0,
                 eos: int | Sequence[int] | None = None, on_tokens: Callable[[list[int]], None] | None = None
                 ) -> Generation:
        """Run :meth:`stream` to the end (or Ctrl-C: ``stopped="interrupted"``, tokens so far kept)."""
        got = Collector(len(prompts), eos, on_tokens)
        timing: dict = {}
        try:
            for toks in self.stream(prompts, max_new, temperature, top_p, eos, timing):
                got.add(toks)
        except KeyboardInterrupt:
            got.stopped = "interrupted"
        return got.result(timing.get("prefill_s", 0.0), timing.get("decode_s", 0.0), timing.get("steps", 0))


class Collector:
    """The tokens of each prompt, step by step, each up to and including its first stop id; ``stopped`` is
    ``"eos"`` once every prompt has stopped (``"interrupted"`` is set by the caller)."""

    def __init__(self, n: int, eos: int | Sequence[int] | None, on_tokens: Callable[[list[int]], None] | None):
        ids = _stop_ids(eos)
        self.stops = set(ids.tolist()) if ids is not None else set()
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.finished = [False] * n
        self.on_tokens = on_tokens
        self.stopped = "length"

    def add(self, toks: list[int]) -> None:
        for i, t in enumerate(toks):
            if not self.finished[i]:
                self.tokens[i].append(t)
                self.finished[i] = t in self.stops
        if self.stops and all(self.finished) and self.stopped == "length":
            self.stopped = "eos"
        if self.on_tokens is not None:
            self.on_tokens(toks)

    def result(self, prefill_s: float, decode_s: float, steps: int) -> Generation:
        return Generation(self.tokens, prefill_s, decode_s, steps, self.stopped)


def _stop_ids(eos: int | Sequence[int] | None) -> torch.Tensor | None:
    """The stop ids as a tensor (``torch.isin``'s test set), or None for none."""
    if eos is None:
        return None
    ids = [eos] if isinstance(eos, int) else list(eos)
    return torch.tensor(ids, dtype=torch.long) if ids else None
