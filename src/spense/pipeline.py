"""Hugging Face plumbing: find blocks and linears, capture block inputs, true-sequential pruning, resume.

This is the only module that knows Hugging Face model internals.  The flow for one model is

1. load the model (local files only, float32 on CPU unless told otherwise) and the calibration windows;
2. run the windows through the embeddings with a forward pre-hook on block 0 that records the hidden
   states (float32, on CPU) and the keyword arguments the model passes to its blocks, then stops;
3. for every block, on the compute device (only one block there at a time): discover the sublayer
   groups (linears that read the same input tensor: q/k/v, gate/up, ...) in execution order; for each
   group accumulate Hessians over all calibration samples (earlier groups already pruned), prune each
   linear with :func:`spense.methods.prune_layer` and write the result back; finally run the samples
   through the pruned block to get the inputs of the next block;
4. after every block, persist the state in ``OUT.partial/`` so that an interrupted run can resume and
   produce a bit-identical result;
5. write the checkpoint with :func:`spense.io.save_checkpoint` in the source's dtype.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from spense.errors import CheckpointError, DeviceError, InputError, NumericalError

#: environment variable for tests: simulate a crash right after block ``k`` was saved.
CRASH_ENV = "SPENSE_TEST_CRASH_AFTER_BLOCK"

STATE_VERSION = 1


class SimulatedCrash(RuntimeError):
    """Raised by the crash test hook (``SPENSE_TEST_CRASH_AFTER_BLOCK``)."""


# --------------------------------------------------------------------------------------------------
# model structure
# --------------------------------------------------------------------------------------------------
_BLOCK_PATHS = (
    "model.layers",  # Llama, Qwen2/3, Mistral, Gemma, Phi-3 ...
    "model.decoder.layers",  # OPT
    "gpt_neox.layers",  # GPT-NeoX / Pythia
    "transformer.h",  # GPT-2, GPT-J, Bloom-like
)


def _get_attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``(prefix, blocks)``: the decoder block list of a causal LM and its attribute path.

    Supports Llama/Qwen2/Qwen3/Mistral (``model.layers``), OPT (``model.decoder.layers``),
    GPT-NeoX (``gpt_neox.layers``) and GPT-2 (``transformer.h``).
    """
    for path in _BLOCK_PATHS:
        blocks = _get_attr_path(model, path)
        if isinstance(blocks, nn.ModuleList) and len(blocks) > 0:
            return path, blocks
    arch = type(model).__name__
    mt = getattr(getattr(model, "config", None), "model_type", "?")
    raise InputError(
        f"unsupported architecture {arch} (model_type {mt!r}): no decoder block list found at "
        f"{', '.join(_BLOCK_PATHS)}"
    )


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D

        return Conv1D
    except Exception:  # pragma: no cover - very old/new transformers
        return None


def is_conv1d(module: nn.Module) -> bool:
    c = _conv1d_type()
    return c is not None and isinstance(module, c)


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """``(out_features, in_features)`` of an ``nn.Linear`` or a transformers ``Conv1D``."""
    w = module.weight
    if is_conv1d(module):
        return int(w.shape[1]), int(w.shape[0])
    return int(w.shape[0]), int(w.shape[1])


def find_linears(
    block: nn.Module, block_size: int = 64, m: int = 4, strict: bool = False, prefix: str = ""
) -> dict[str, nn.Module]:
    """Prunable linears of one block, by name relative to the block (module order).

    ``nn.Linear`` and transformers' ``Conv1D`` (GPT-2; its weight is ``(in, out)``) qualify. A linear
    whose ``in_features`` is not a multiple of ``m`` or is smaller than ``block_size`` is skipped with
    a warning, or raises :class:`InputError` when ``strict``.
    """
    conv = _conv1d_type()
    kinds: tuple[type, ...] = (nn.Linear,) + ((conv,) if conv is not None else ())
    out: dict[str, nn.Module] = {}
    for name, mod in block.named_modules():
        if not name or not isinstance(mod, kinds):
            continue
        _, k = linear_shape(mod)
        full = f"{prefix}.{name}" if prefix else name
        why = None
        if k % m:
            why = f"in_features {k} is not a multiple of {m}"
        elif k < block_size:
            why = f"in_features {k} is smaller than the dense block size {block_size}"
        if why:
            if strict:
                raise InputError(f"{full}: cannot be pruned ({why}); drop --strict to skip it")
            warnings.warn(f"skipping {full}: {why}", UserWarning, stacklevel=2)
            continue
        out[name] = mod
    return out


def get_weight(module: nn.Module) -> torch.Tensor:
    """The ``(N, K)`` float32 weight (Conv1D transposed here, and only here)."""
    w = module.weight.data
    if is_conv1d(module):
        w = w.t()
    return w.float().contiguous()


def set_weight(module: nn.Module, w: torch.Tensor) -> None:
    """Write an ``(N, K)`` weight back, in the module's dtype and layout."""
    p = module.weight
    if is_conv1d(module):
        w = w.t()
    p.data.copy_(w.to(device=p.device, dtype=p.dtype))


# --------------------------------------------------------------------------------------------------
# devices and configs
# --------------------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` = cuda if available else cpu; a CUDA request without CUDA is a :class:`DeviceError`."""
    if isinstance(device, torch.device):
        return device
    d = str(device).strip().lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(d)
    except RuntimeError as e:
        raise InputError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but CUDA is not available")
    return dev


def config_dtype(config: Any) -> torch.dtype:
    """The dtype the source checkpoint was stored in (``float32`` if the config does not say)."""
    d = None
    for key in ("dtype", "torch_dtype"):
        d = config.__dict__.get(key)
        if d is not None:
            break
    if isinstance(d, str):
        d = getattr(torch, d.replace("torch.", ""), None)
    return d if isinstance(d, torch.dtype) else torch.float32


def source_dtype(model_dir: str | Path) -> torch.dtype:
    """The dtype recorded in ``config.json`` of a model folder (``float32`` when absent).

    Read from the file, not from a loaded model, whose config reflects the dtype it was loaded in.
    """
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {Path(model_dir) / 'config.json'}: {e}") from e

    class _C:  # config_dtype reads __dict__
        pass

    c = _C()
    c.__dict__.update({k: cfg.get(k) for k in ("dtype", "torch_dtype")})
    return config_dtype(c)


def max_positions(config: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(config, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def clip_seqlen(config: Any, seqlen: int) -> int:
    """``seqlen`` clipped to the model's maximum positions (with a warning)."""
    if seqlen <= 0:
        raise InputError(f"seqlen must be positive, got {seqlen}")
    mp = max_positions(config)
    if mp is not None and seqlen > mp:
        warnings.warn(
            f"seqlen {seqlen} exceeds the model's {mp} positions; using {mp}", UserWarning, stacklevel=2
        )
        return mp
    return seqlen


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if str(dtype).lower() not in names:
        raise InputError(f"unknown dtype {dtype!r} (use float32, float16 or bfloat16)")
    return names[str(dtype).lower()]


def load_model(model_dir: str | Path, dtype: torch.dtype | None = None) -> nn.Module:
    """Load a causal LM from a local folder (never the network), on CPU, in ``dtype`` (float32)."""
    import transformers
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_pretrained(
                str(model_dir), local_files_only=True, low_cpu_mem_usage=True, **{key: dtype}
            )
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot load model from {model_dir}: {e}") from e
    model.eval()
    model.config.use_cache = False
    return model


def check_finite_weights(model: nn.Module) -> None:
    """:class:`NumericalError` naming the first parameter that holds NaN/Inf."""
    for name, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p.data).all()):
            bad = int((~torch.isfinite(p.data)).sum())
            raise NumericalError(f"weight {name} contains {bad} NaN/Inf values")


@contextmanager
def _outside_blocks_on(model: nn.Module, blocks: nn.ModuleList, device: torch.device) -> Iterator[None]:
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


# --------------------------------------------------------------------------------------------------
# block inputs and block execution
# --------------------------------------------------------------------------------------------------
class _StopForward(Exception):
    pass


@dataclass
class BlockInputs:
    """The hidden states entering a block (``(n, seqlen, hidden)`` float32, CPU) and the block call's
    other positional/keyword arguments (identical for every sample of the same length)."""

    hidden: torch.Tensor
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@torch.no_grad()
def capture_inputs(model: nn.Module, windows: torch.Tensor, device: torch.device) -> BlockInputs:
    """Run ``windows`` (``(n, seqlen)`` token ids) up to block 0 and record what enters it."""
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
        raise _StopForward

    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with _outside_blocks_on(model, blocks, device):
            for j in range(windows.shape[0]):
                try:
                    model(windows[j : j + 1].to(device), use_cache=False)
                except _StopForward:
                    pass
    finally:
        handle.remove()
    if len(hidden) != windows.shape[0]:
        raise InputError("could not capture the inputs of the first block (unsupported model forward)")
    kwargs = extra["kwargs"]
    if "use_cache" in kwargs:
        kwargs["use_cache"] = False
    return BlockInputs(torch.cat(hidden, 0), extra["args"], kwargs)


def _to(obj: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    if isinstance(obj, torch.Tensor):
        if dtype is not None and obj.is_floating_point():
            return obj.to(device=device, dtype=dtype)
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(_to(o, device, dtype) for o in obj)
    if isinstance(obj, list):
        return [_to(o, device, dtype) for o in obj]
    if isinstance(obj, dict):
        return {k: _to(v, device, dtype) for k, v in obj.items()}
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
    """Run the samples through ``block``; return the outputs (float32, CPU) when ``keep``."""
    dtype = _block_dtype(block)
    args, kwargs = _to(inputs.args, device), _to(inputs.kwargs, device)
    # float tensors in the kwargs (masks, rotary cos/sin) follow the block's dtype
    kwargs = {k: (_to(v, device, dtype) if k == "position_embeddings" else v) for k, v in kwargs.items()}
    n = inputs.hidden.shape[0]
    samples = samples if samples is not None else range(n)
    outs = torch.empty_like(inputs.hidden) if keep else None
    for j in samples:
        x = inputs.hidden[j : j + 1].to(device=device, dtype=dtype)
        y = block(x, *args, **kwargs)
        if isinstance(y, (tuple, list)):
            y = y[0]
        if keep:
            outs[j : j + 1] = y.float().cpu()
    return outs


@torch.no_grad()
def find_groups(
    block: nn.Module, linears: dict[str, nn.Module], inputs: BlockInputs, device: torch.device
) -> list[list[str]]:
    """Sublayer groups in execution order: linears that read the same input tensor form one group.

    One sample is run through the block with forward pre-hooks recording, in call order, each linear
    and the identity of its input (Llama: ``[q,k,v], [o], [gate,up], [down]``).
    """
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


# --------------------------------------------------------------------------------------------------
# resume state
# --------------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def partial_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    return out.with_name(out.name + ".partial")


class ResumeState:
    """``OUT.partial/``: ``state.json`` (fingerprint, finished blocks, layer records),
    ``block_{i}.safetensors`` (pruned weights of finished block ``i``) and ``inps_{i}.safetensors``
    (float32 hidden states entering block ``i``, the next one to prune).

    Each file is written via temp + rename and ``state.json`` is written last, so it is the commit
    point: a crash at any moment leaves a consistent state.
    """

    def __init__(self, root: Path, fingerprint: str, info: dict, restart: bool = False):
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.info = info
        self.finished: list[int] = []
        self.records: dict[str, dict] = {}
        self.seconds = 0.0
        self.inps_file: str | None = None
        state_path = self.root / "state.json"
        if restart and self.root.exists():
            shutil.rmtree(self.root)
        if state_path.exists():
            try:
                st = json.loads(state_path.read_text())
            except (OSError, ValueError) as e:
                raise CheckpointError(
                    f"unreadable resume state {state_path}: {e}; delete {self.root} or pass --restart"
                ) from e
            if st.get("fingerprint") != fingerprint or st.get("state_version") != STATE_VERSION:
                raise InputError(
                    f"{self.root} holds an interrupted run with different settings (model, method, "
                    f"calibration data or version); pass --restart or delete {self.root}"
                )
            self.finished = [int(i) for i in st.get("finished", [])]
            self.records = st.get("records", {})
            self.seconds = float(st.get("seconds", 0.0))
            self.inps_file = st.get("inps")
        elif self.root.exists() and any(self.root.iterdir()):
            # files but no committed state: nothing finished, start clean
            shutil.rmtree(self.root)

    @property
    def next_block(self) -> int:
        return len(self.finished)

    def load_block(self, i: int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        try:
            return load_file(str(self.root / f"block_{i}.safetensors"))
        except Exception as e:
            raise CheckpointError(
                f"resume state {self.root} is damaged ({e}); pass --restart or delete the folder"
            ) from e

    def load_inputs(self) -> torch.Tensor | None:
        if self.inps_file is None:
            return None
        from safetensors.torch import load_file

        try:
            return load_file(str(self.root / self.inps_file))["hidden"]
        except Exception as e:
            raise CheckpointError(
                f"resume state {self.root} is damaged ({e}); pass --restart or delete the folder"
            ) from e

    def commit_block(
        self, i: int, weights: dict[str, torch.Tensor], records: dict[str, dict],
        next_inputs: torch.Tensor | None, seconds: float,
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_save_tensors(self.root / f"block_{i}.safetensors", weights)
        old = self.inps_file
        if next_inputs is not None:
            self.inps_file = f"inps_{i + 1}.safetensors"
            _atomic_save_tensors(self.root / self.inps_file, {"hidden": next_inputs})
        else:
            self.inps_file = None
        self.finished.append(i)
        self.records.update(records)
        self.seconds += seconds
        st = {
            "state_version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "info": self.info,
            "finished": self.finished,
            "records": self.records,
            "seconds": self.seconds,
            "inps": self.inps_file,
        }
        _atomic_write_bytes(self.root / "state.json", json.dumps(st, indent=1).encode())
        if old and old != self.inps_file:
            (self.root / old).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# pruning
# --------------------------------------------------------------------------------------------------
def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=True,
    )


def prune_loaded(
    model: nn.Module,
    windows: torch.Tensor,
    cfg: Any,
    device: str | torch.device = "auto",
    strict: bool = False,
    progress: bool = True,
    state: ResumeState | None = None,
    after_block: Callable[[int], None] | None = None,
) -> dict[str, dict]:
    """Prune ``model`` in place, block by block (true-sequential), on calibration ``windows``.

    Returns ``{weight name: layer record}``. With ``state`` the run is resumable (see
    :class:`ResumeState`); ``after_block(i)`` is called after block ``i`` is committed (test hook).
    """
    from spense.hessian import HessianAccumulator
    from spense.methods import prune_layer

    dev = resolve_device(device)
    prefix, blocks = find_blocks(model)
    check_finite_weights(model)
    model.eval()
    records: dict[str, dict] = dict(state.records) if state else {}
    start = state.next_block if state else 0
    crash_after = os.environ.get(CRASH_ENV)

    for i in range(start):  # finished blocks of an interrupted run
        sd = state.load_block(i)
        linears = dict(blocks[i].named_modules())
        for key, t in sd.items():
            mod = linears.get(key[: -len(".weight")])
            if mod is None or not key.endswith(".weight") or mod.weight.shape != t.shape:
                raise CheckpointError(f"resume state does not match the model ({prefix}.{i}.{key})")
            mod.weight.data.copy_(t)
    if start >= len(blocks):
        return records

    inputs = capture_inputs(model, windows, dev)
    if start > 0:
        saved = state.load_inputs()
        if saved is None or saved.shape != inputs.hidden.shape:
            raise CheckpointError(f"resume state {state.root} is damaged; pass --restart or delete it")
        inputs.hidden = saved

    # all linears known up front so the layer bar has a total
    block_linears = [
        find_linears(b, cfg.block, getattr(cfg, "m", 4), strict, f"{prefix}.{i}") if i >= start else {}
        for i, b in enumerate(blocks)
    ]
    bar = _progress(progress)
    with bar if bar is not None else nullcontext():
        outer = bar.add_task("blocks", total=len(blocks), completed=start) if bar else None
        for i in range(start, len(blocks)):
            t0 = time.perf_counter()
            block = blocks[i]
            bname = f"{prefix}.{i}"
            linears = block_linears[i]
            inner = bar.add_task(f"  {bname}", total=len(linears)) if bar else None
            block.to(dev)
            block_records: dict[str, dict] = {}
            try:
                groups = find_groups(block, linears, inputs, dev) if linears else []
                for group in groups:
                    accs = {}
                    handles = []
                    for name in group:
                        mod = linears[name]
                        acc = HessianAccumulator(linear_shape(mod)[1], f"{bname}.{name}", device=dev)
                        accs[name] = acc

                        def hook(module: nn.Module, args: tuple, _acc=acc) -> None:
                            _acc.add(args[0].detach())

                        handles.append(mod.register_forward_pre_hook(hook))
                    try:
                        run_block(block, inputs, dev, keep=False)
                    finally:
                        for h in handles:
                            h.remove()
                    for name in group:
                        mod, full = linears[name], f"{bname}.{name}"
                        if bar:
                            bar.update(inner, description=f"  {full}")
                        W = get_weight(mod).to(dev)
                        res = prune_layer(W, accs[name].H, cfg, full)
                        set_weight(mod, res.weight)
                        del accs[name]
                        block_records[full] = _record(mod, res, cfg, f"{full}.weight")
                        if bar:
                            bar.advance(inner)
                outs = run_block(block, inputs, dev, keep=True)
                if not bool(torch.isfinite(outs).all()):
                    raise NumericalError(f"block {bname} produced NaN/Inf outputs after pruning")
            finally:
                block.to("cpu")
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
            inputs.hidden = outs
            records.update(block_records)
            if state is not None:
                weights = {f"{n}.weight": m.weight.data for n, m in linears.items()}
                last = i == len(blocks) - 1
                state.commit_block(i, weights, block_records, None if last else outs,
                                   time.perf_counter() - t0)
            if bar:
                bar.remove_task(inner)
                bar.advance(outer)
            if after_block is not None:
                after_block(i)
            if crash_after is not None and crash_after.strip() == str(i):
                raise SimulatedCrash(f"simulated crash after block {i} ({CRASH_ENV})")
    return records


def _record(mod: nn.Module, res: Any, cfg: Any, weight_name: str) -> dict:
    from spense.format import SpenseLayout, density

    lay = res.layout
    if cfg.method == "unstructured":
        # an unstructured weight has no 2:4 region: in the Spense format it is stored wholly dense
        n, k = lay.shape
        lay = SpenseLayout((n, k), axis="cols", dense_idx=torch.arange(k), block=lay.block, n=lay.n, m=lay.m)
    return {
        "weight": weight_name,
        "transposed": is_conv1d(mod),
        "layout": lay.to_dict(),
        "method": cfg.method,
        "strategy": cfg.strategy if cfg.method == "spense" else None,
        "dense_ratio": float(lay.dense_ratio),
        "loss": float(res.loss),
        "density": float(density(res.weight)),
        "seconds": float(res.seconds),
    }


def _fingerprint(info: dict) -> str:
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


def prune_model(
    model_dir: str | Path,
    out_dir: str | Path,
    cfg: Any,
    calib_path: str | Path | None = None,
    nsamples: int = 128,
    seqlen: int = 2048,
    seed: int = 0,
    device: str | torch.device = "auto",
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    dtype: str | torch.dtype | None = None,
    restart: bool = False,
    after_block: Callable[[int], None] | None = None,
) -> dict:
    """Prune the HF model in ``model_dir`` and write a Spense checkpoint to ``out_dir``.

    Resumable: the state lives in ``OUT.partial/`` (see :class:`ResumeState`) and is removed once the
    checkpoint is written; ``restart`` discards it first. Returns the manifest.
    """
    import spense
    from spense import data, io

    t0 = time.perf_counter()
    model_dir = io.check_model_dir(model_dir)
    out_dir = Path(out_dir).expanduser().resolve()
    # refuse a bad output location before doing any work
    check_out = io.check_out_dir
    check_out(model_dir, out_dir, overwrite)
    if nsamples <= 0:
        raise InputError(f"nsamples must be positive, got {nsamples}")
    cfg.validate()
    cdtype = parse_dtype(dtype)
    dev = resolve_device(device)
    calib_path = Path(calib_path) if calib_path is not None else data.default_calib_path()

    text = data.read_text(calib_path)
    tokenizer = data.load_tokenizer(model_dir)
    model = load_model(model_dir, cdtype)
    seqlen = clip_seqlen(model.config, seqlen)
    ids = data.tokenize(tokenizer, text)
    windows = data.calibration_windows(ids, nsamples, seqlen, seed)
    sha = data.text_fingerprint(text)

    info = {
        "model": str(model_dir),
        "config": cfg.to_dict(),
        "calibration": {"sha256": sha, "nsamples": nsamples, "seqlen": seqlen, "seed": seed},
        "version": spense.__version__,
        "dtype": str(cdtype or torch.float32),
        "device": dev.type,
        "strict": strict,
    }
    state = ResumeState(partial_dir(out_dir), _fingerprint(info), info, restart=restart)
    records = prune_loaded(model, windows, cfg, dev, strict, progress, state, after_block)

    manifest = build_manifest(cfg, records, model_dir, calib_path, sha, windows, seed, state.seconds)
    manifest["wall_seconds"] = time.perf_counter() - t0
    model.to(source_dtype(model_dir))
    io.save_checkpoint(model, model_dir, out_dir, manifest, overwrite=overwrite)
    shutil.rmtree(state.root, ignore_errors=True)
    return manifest


def build_manifest(
    cfg: Any, records: dict[str, dict], model_dir: str | Path, calib_path: str | Path, calib_sha256: str,
    windows: torch.Tensor, seed: int, seconds: float,
) -> dict:
    """The run part of ``spense.json`` (io adds format, version and tensor hashes)."""
    return {
        "method": cfg.method,
        "config": cfg.to_dict(),
        "calibration": {
            "path": str(calib_path), "sha256": calib_sha256, "nsamples": int(windows.shape[0]),
            "seqlen": int(windows.shape[1]), "seed": int(seed),
        },
        "source_model": str(model_dir),
        "layers": records,
        "seconds": float(seconds),
    }


def linear_density(model: nn.Module, block_size: int = 64, m: int = 4) -> float:
    """Measured nonzero fraction over the prunable linears of all blocks."""
    _, blocks = find_blocks(model)
    nnz = total = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in blocks:
            for mod in find_linears(b, block_size, m).values():
                nnz += int((mod.weight != 0).sum())
                total += mod.weight.numel()
    return nnz / total if total else 1.0


# --------------------------------------------------------------------------------------------------
# small helpers used by the CLI demo
# --------------------------------------------------------------------------------------------------
def fresh_copy(model: nn.Module) -> nn.Module:
    """An independent copy of a loaded model (the demo prunes one per method)."""
    return copy.deepcopy(model)
