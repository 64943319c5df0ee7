"""Block inputs: capture what enters the first decoder block, run a block, find its sublayer groups.

* :func:`capture_inputs` runs the calibration windows through the embeddings with a forward pre-hook
  on block 0 that records the hidden states (float32, CPU) and the other arguments the model passes
  to its blocks (rotary embeddings, masks: identical for every window of one length), then stops; one more
  pass, every block replaced by the identity, records each block's own arguments where they differ from
  block 0's (Gemma-3: another RoPE base and mask for its full-attention layers).
* :func:`run_block` runs those hidden states through one block, one window at a time (the pipeline
  moves them to the GPU when they fit, :func:`spense.pipeline.resident_inputs`).
* :func:`find_groups` runs one window with pre-hooks on the block's linears and groups the linears
  that read the same input tensor, in execution order (Llama: ``[q,k,v], [o], [gate,up], [down]``);
  :func:`record_calls` gives the calls themselves (the pipeline's passes stop early only where every
  linear runs once).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from spense.data import check_model_token_ids
from spense.errors import InputError
from spense.hf import find_blocks


@contextmanager
def outside_blocks_on(model: nn.Module, blocks: nn.ModuleList, device: torch.device) -> Iterator[None]:
    """Temporarily move everything except the blocks (embeddings, rotary, norms) to ``device``."""
    if device.type == "cpu":
        yield
        return
    inside = {id(m) for m in blocks.modules()}
    moved: list[tuple[torch.Tensor, torch.device]] = []
    seen: set[int] = set()
    for mod in model.modules():
        if id(mod) in inside:
            continue
        for tensors in (mod._parameters, mod._buffers):
            for t in tensors.values():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                moved.append((t, t.device))
                t.data = t.data.to(device)
    try:
        yield
    finally:
        for t, dev in moved:
            t.data = t.data.to(dev)


class StopForward(BaseException):
    """Raised by a hook to end a forward pass once it has what it needs (caught by the caller). A
    BaseException, so that a model's own ``except Exception`` fallbacks do not swallow it."""


@dataclass
class BlockInputs:
    """The hidden states entering a block (``(n, seqlen, hidden)`` float32, CPU) and the block call's
    other positional/keyword arguments (identical for every sample of the same length)."""

    hidden: torch.Tensor
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    #: ``id(block) -> (args, kwargs)`` for the blocks whose call differs from block 0's (Gemma-3's full-attention
    #: layers take another RoPE base and mask than its sliding-window ones); empty where every block's is the same
    per_block: dict = field(default_factory=dict)

    def call_args(self, block: nn.Module) -> tuple[tuple, dict]:
        """The positional (after the hidden states) and keyword arguments the model passes ``block``."""
        return self.per_block.get(id(block), (self.args, self.kwargs))


@torch.no_grad()
def capture_inputs(model: nn.Module, windows: torch.Tensor, device: torch.device) -> BlockInputs:
    """Run ``windows`` (``(n, seqlen)`` token ids) up to block 0 and record what enters it."""
    check_model_token_ids(model, windows)
    _, blocks = find_blocks(model)
    hidden: list[torch.Tensor] = []
    extra: dict[str, Any] = {}

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        kwargs = dict(kwargs)
        if args:
            hs, rest = args[0], tuple(args[1:])
        else:
            hs, rest = kwargs.pop("hidden_states"), ()
        hidden.append(hs.detach().float().cpu())
        if not extra:
            extra["args"], extra["kwargs"] = rest, kwargs
        raise StopForward

    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with outside_blocks_on(model, blocks, device):
            for j in range(windows.shape[0]):
                try:
                    model(windows[j : j + 1].to(device), use_cache=False)
                except StopForward:
                    pass
    finally:
        handle.remove()
    if len(hidden) != windows.shape[0]:
        raise InputError("could not capture the inputs of the first block (unsupported model forward)")
    kwargs = _no_cache(extra["kwargs"])
    per_block = {}
    for block, (a, k) in zip(blocks[1:], _calls_of_blocks(model, blocks, windows[:1], device)[1:]):
        if not (_same(a, extra["args"]) and _same(k, kwargs)):
            per_block[id(block)] = (a, k)
    return BlockInputs(torch.cat(hidden, 0), extra["args"], kwargs, per_block)


def _no_cache(kwargs: dict) -> dict:
    return {**kwargs, "use_cache": False} if "use_cache" in kwargs else kwargs


@torch.no_grad()
def _calls_of_blocks(model: nn.Module, blocks: nn.ModuleList, window: torch.Tensor,
                     device: torch.device) -> list[tuple[tuple, dict]]:
    """What the model passes each block besides the hidden states, for one window: every block's forward is
    replaced by the identity while its pre-hook records the call, and the pass stops at the last block.  Where a
    block is not reached so, every block is taken to get block 0's arguments (an empty list)."""
    calls: list[tuple[tuple, dict]] = []

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        kwargs = dict(kwargs)
        rest = tuple(args[1:]) if args else ()
        kwargs.pop("hidden_states", None)
        calls.append((rest, _no_cache(kwargs)))
        if len(calls) == len(blocks):
            raise StopForward

    def identity(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args else kwargs["hidden_states"]

    handles = [b.register_forward_pre_hook(hook, with_kwargs=True) for b in blocks]
    own = [b.__dict__.get("forward") for b in blocks]  # a forward set on the instance (accelerate's hooks) stays
    for b in blocks:
        b.forward = identity
    try:
        with outside_blocks_on(model, blocks, device):
            model(window.to(device), use_cache=False)
    except StopForward:
        pass
    except Exception:  # a model whose loop needs a block's real output: block 0's arguments for all, as before
        calls.clear()
    finally:
        for b, f in zip(blocks, own):
            if f is None:
                del b.forward
            else:
                b.forward = f
        for h in handles:
            h.remove()
    return calls if len(calls) == len(blocks) else []


def _same(a: Any, b: Any) -> bool:
    """Equal nested arguments: tensors by value (the same object, or equal shape, dtype and elements)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and
                (a is b or (a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b)))))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a is b or a == b


def to_device(obj: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """Tensors in ``obj`` (nested tuples, lists, dicts) to ``device``; floating ones also to ``dtype``."""
    if isinstance(obj, torch.Tensor):
        if dtype is not None and obj.is_floating_point():
            return obj.to(device=device, dtype=dtype)
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(to_device(o, device, dtype) for o in obj)
    if isinstance(obj, list):
        return [to_device(o, device, dtype) for o in obj]
    if isinstance(obj, dict):
        return {k: to_device(v, device, dtype) for k, v in obj.items()}
    return obj


def _block_dtype(block: nn.Module) -> torch.dtype:
    for p in block.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


@torch.no_grad()
def run_block(
    block: nn.Module, inputs: BlockInputs, device: torch.device, samples: range | None = None,
    keep: bool = True,
) -> torch.Tensor | None:
    """Run the samples through ``block``; return the outputs (float32, on the inputs' device) when
    ``keep``. Without ``keep`` a hook may end a sample's pass early by raising :class:`StopForward` (the
    Hessian passes stop at the input of the last linear they read)."""
    dtype = _block_dtype(block)
    args, kwargs = inputs.call_args(block)
    args, kwargs = to_device(args, device), to_device(kwargs, device)
    # float tensors in the kwargs (masks, rotary cos/sin) follow the block's dtype
    kwargs = {k: (to_device(v, device, dtype) if k == "position_embeddings" else v) for k, v in kwargs.items()}
    n = inputs.hidden.shape[0]
    samples = samples if samples is not None else range(n)
    outs = torch.empty_like(inputs.hidden) if keep else None
    for j in samples:
        x = inputs.hidden[j : j + 1].to(device=device, dtype=dtype)
        try:
            y = block(x, *args, **kwargs)
        except StopForward:
            if keep:
                raise
            continue
        if keep:
            outs[j : j + 1] = y[0] if isinstance(y, (tuple, list)) else y  # float32, where the inputs live
    return outs


@torch.no_grad()
def record_calls(
    block: nn.Module, linears: dict[str, nn.Module], inputs: BlockInputs, device: torch.device
) -> list[tuple[str, tuple]]:
    """One sample through ``block`` with forward pre-hooks on its linears: ``(name, identity of the input
    tensor)`` per call, in call order (a linear run twice appears twice)."""
    calls: list[tuple[str, tuple]] = []
    alive: list[torch.Tensor] = []  # keep inputs alive so their storage cannot be reused
    handles = []
    for name, mod in linears.items():
        def hook(module: nn.Module, args: tuple, _name: str = name) -> None:
            x = args[0]
            alive.append(x)
            key = (x.data_ptr(), tuple(x.shape), tuple(x.stride()), x.dtype)
            calls.append((_name, key))
        handles.append(mod.register_forward_pre_hook(hook))
    try:
        run_block(block, inputs, device, samples=range(1), keep=False)
    finally:
        for h in handles:
            h.remove()
    return calls


def group_calls(calls: list[tuple[str, tuple]], linears: dict[str, nn.Module]) -> list[list[str]]:
    """Sublayer groups in execution order from :func:`record_calls`: linears whose first call reads the
    same input tensor form one group. Linears never called are skipped with a warning."""
    groups: dict[tuple, list[str]] = {}
    seen: set[str] = set()
    for name, key in calls:
        if name in seen:
            continue
        seen.add(name)
        groups.setdefault(key, []).append(name)
    unused = [n for n in linears if n not in seen]
    for n in unused:
        warnings.warn(f"skipping {n}: not called in the block's forward pass", UserWarning, stacklevel=2)
    return list(groups.values())


def find_groups(
    block: nn.Module, linears: dict[str, nn.Module], inputs: BlockInputs, device: torch.device
) -> list[list[str]]:
    """Sublayer groups in execution order: linears that read the same input tensor form one group
    (Llama: ``[q,k,v], [o], [gate,up], [down]``); :func:`record_calls` then :func:`group_calls`."""
    return group_calls(record_calls(block, linears, inputs, device), linears)
