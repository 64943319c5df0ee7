"""The fused decode-attention split kernel's registers, spills, pipelined loads and waves on an sm_90 GPU, compiled here
(no GPU needed).

    python benchmarks/attn_regs.py [--batches 1,8,32] [--length 640] [--early 1,0] [--caps 0,128] [--stages 0,2]
                                   [--blocks 32] [--warps 4]

For each batch size the split rule of spense.runtime.attention (as configured by its SPENSE_ATTN_* switches) gives the
keys a split and the programs a launch (B * H * splits). The kernel is compiled as the engine's decode step launches it:
:func:`spense.runtime.attention.launch_decode_attention` runs on CPU tensors laid out as the engine's (q, k and v views
of the fused q / k / v projection's output, slices of a static cache, the mask row and the RoPE rows), with the kernels
swapped for a recorder, and the recorded arguments go through Triton's own launch binder, so the kernel is specialized
as at a launch (16-byte aligned pointers and integers that are multiples of 16 marked so: without those marks Triton
cannot copy the bf16 key and value tiles asynchronously and leaves them out of its software pipeline), with dependent
launch on, for ``sm_90a`` under each EARLY_KV, register cap (SPENSE_ATTN_MAXNREG, Triton's ``maxnreg``; 0: none) and
pipeline depth (SPENSE_ATTN_STAGES, ``num_stages``; 0: Triton's default), keys a loop step (BLOCK) and warps a program.
``cuobjdump -res-usage`` on the cubin (assembled by the ptxas Triton bundles, as on the device) gives its registers a
thread and its stack frame and local bytes (spills); the TTGIR's ``async_copy_global_to_local`` ops count the loads in
Triton's pipeline. Then, from the register file (64 Ki registers a SM, allocated 256 a warp), shared memory (228 KiB a
SM, 1 KiB reserved a CTA) and 32 CTAs a SM at most: the programs that fit a SM at once, and the waves a launch takes on
``--sms`` SMs. The device's Triton may differ from this one: the script prints its version (the counts in
docs/runtime.md are Triton 3.6's, the device's).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import subprocess
import tempfile
from unittest import mock

import torch

from spense.runtime import attention

REGS_PER_SM, SMEM_PER_SM, CTA_SMEM_RESERVED, MAX_CTAS = 65536, 228 * 1024, 1024, 32


def ctas_per_sm(regs: int, warps: int, smem: int) -> int:
    """CTAs of ``warps`` warps with ``regs`` registers a thread and ``smem`` bytes of shared memory that fit one SM."""
    per_warp = math.ceil(regs * 32 / 256) * 256
    by_regs = (REGS_PER_SM // per_warp) // warps
    by_smem = SMEM_PER_SM // (smem + CTA_SMEM_RESERVED)
    return min(by_regs, by_smem, MAX_CTAS)


def _cuobjdump() -> str:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    return path if os.path.exists(path) else "cuobjdump"


class _Recorder:
    """Stands for a Triton kernel: ``kernel[grid](*args, **kwargs)`` records the call."""

    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((grid, args, kwargs))


def engine_case(B: int, H: int = 8, G: int = 4, D: int = 128, L: int = 640, cache_len: int = 1024):
    """CPU tensors as the engine's decode step hands them to ``spense::decode_attention_fused``
    (:mod:`spense.engine.model`): q, k, v views of one ``(B, 1, (H G + 2 H) D)`` projection output, the q / k norm
    weights, the RoPE rows ``cos, sin`` ``(B, D)`` (slices of ``(B, 1, 1, D)``), caches ``(B, H, cache_len, D)`` (the
    engine's are as long as its largest bucket; the kernel reads their first ``L`` keys), the slot, the mask row
    ``(B, L)`` (a slice of ``(B, 1, L)``) and eps."""
    dt = torch.bfloat16
    qkv = torch.zeros(B, 1, (H * G + 2 * H) * D, dtype=dt)
    q, k, v = qkv.split([H * G * D, H * D, H * D], dim=-1)
    cos, sin = torch.zeros(B, 1, 1, D), torch.zeros(B, 1, 1, D)
    kc = torch.zeros(B, H, max(cache_len, L), D, dtype=dt)
    w = torch.ones(D, dtype=dt)
    return (q.view(B, H, G, D), k.view(B, H, D), v.view(B, H, D), w, w.clone(), cos[:, 0, 0], sin[:, 0, 0], kc,
            torch.zeros_like(kc), torch.zeros(1, dtype=torch.long), torch.zeros(B, 1, L, dtype=dt)[:, 0], 1e-6)


def launch_call(B: int, H: int = 8, G: int = 4, D: int = 128, L: int = 640):
    """(grid, args, kwargs) of the split kernel's launch for :func:`engine_case`, as the engine's decode step on an
    sm_90 GPU makes it (dependent launch on).  Refused under ``TRITON_INTERPRET=1``, where the launcher would record
    the interpreter's launch (float32 dots, no register cap)."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("attn_regs: unset TRITON_INTERPRET: under the interpreter the launch is not the GPU's")
    q, k, v, qw, kw, cos, sin, kc, vc, pos, mask, eps = engine_case(B, H, G, D, L)
    rec = _Recorder()
    with mock.patch.object(attention, "_decode_attn_split", rec), \
            mock.patch.object(attention, "_decode_attn_merge", _Recorder()):  # the module's kernels, restored after
        attention.launch_decode_attention(q, kc[:, :, :L], vc[:, :, :L], mask, fused=(k, v, qw, kw, cos, sin, pos, eps))
    grid, args, kwargs = rec.calls[0]
    return grid, args, {**kwargs, "PDL": True, "launch_pdl": True}


def compile_launch(args, kwargs):
    """The split kernel compiled for sm_90a from a recorded launch, specialized by Triton's own binder as a launch
    would be (its signature, constexprs and alignment attributes)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    fn, target = attention._decode_attn_split, GPUTarget("cuda", 90, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, spec, options = binder(*args, **kwargs)
    options, sig, constexprs, attrs = fn._pack_args(backend, kwargs, bound, spec, options)
    return triton.compile(ASTSource(fn, sig, constexprs, attrs), target=target, options=options.__dict__)


def resources(kernel) -> tuple[int, int, int, int]:
    """(registers a thread, spill bytes (stack frame + local), shared bytes, loads in Triton's pipeline (its TTGIR's
    ``async_copy_global_to_local`` ops)) of a compiled kernel."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        out = subprocess.run([_cuobjdump(), "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", out)
    if m is None:
        raise SystemExit(f"attn_regs: no resource line in cuobjdump's output: {out[-300:]!r}")
    reg, stack, shared, local = (int(g) for g in m.groups())
    return reg, stack + local, shared + int(kernel.metadata.shared), kernel.asm["ttgir"].count(
        "async_copy_global_to_local")


#: the module settings main() sets per kernel, restored after
SETTINGS = ("EARLY_KV", "SPLIT_MAXNREG", "SPLIT_STAGES", "BLOCK", "SPLIT_WARPS")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--length", type=int, default=640, help="keys read (640: the engine's after a prompt of 512)")
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--group", type=int, default=4, help="query heads per KV head")
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--early", default="1,0", help="SPENSE_ATTN_EARLY_KV values")
    ap.add_argument("--caps", default="0,128", help="register caps (SPENSE_ATTN_MAXNREG; 0: none)")
    ap.add_argument("--stages", default="0,2", help="pipeline depths (SPENSE_ATTN_STAGES; 0: Triton's default)")
    ap.add_argument("--blocks", default=str(attention.BLOCK), help="keys a step of the key loop (the module's BLOCK)")
    ap.add_argument("--warps", default=str(attention.SPLIT_WARPS), help="warps a program")
    ap.add_argument("--sms", type=int, default=132, help="SMs of the GPU (H100 SXM and H200: 132)")
    ap.add_argument("--out", default=None, help="append a JSON row per kernel here")
    a = ap.parse_args(argv)
    import triton

    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    H, G, D, L = a.kv_heads, a.group, a.head_dim, a.length
    print(f"Triton {triton.__version__}, sm_90a; H={H} G={G} D={D} L={L}, {a.sms} SMs")
    rows, old = [], [getattr(attention, k) for k in SETTINGS]
    try:
        for B, early, cap, st, blk, warps in itertools.product(ints(a.batches), ints(a.early), ints(a.caps),
                                                              ints(a.stages), ints(a.blocks), ints(a.warps)):
            for k, v in zip(SETTINGS, (bool(early), cap, st or None, blk, warps)):
                setattr(attention, k, v)
            split = attention.split_length(B, H, L)
            grid, args, kwargs = launch_call(B, H, G, D, L)
            regs, local, smem, piped = resources(compile_launch(args, kwargs))
            fit = ctas_per_sm(regs, warps, smem)
            programs = grid[0] * grid[1]
            waves = programs / (fit * a.sms) if fit else float("inf")
            row = {"B": B, "split": split, "programs": programs, "early_kv": early, "maxnreg": cap, "stages": st,
                   "block": blk, "warps": warps, "regs": regs, "spill_bytes": local, "smem": smem,
                   "pipelined_loads": piped, "ctas_per_sm": fit, "waves": round(waves, 2), "triton": triton.__version__}
            rows.append(row)
            print(f"B={B:<3} split {split:4d}  {programs:4d} programs  early_kv {early}  cap {cap or '-':>3}  "
                  f"stages {st or '-'}  block {blk}  warps {warps}: {regs:3d} registers, {local:4d} B spilled, "
                  f"{smem:6d} B shared, {piped:2d} pipelined loads -> {fit} a SM, {waves:.2f} waves")
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    finally:
        for k, v in zip(SETTINGS, old):
            setattr(attention, k, v)
    return rows


if __name__ == "__main__":
    main()
