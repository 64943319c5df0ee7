"""The fused decode-attention split kernel's registers, spills and waves on an sm_90 GPU, compiled here (no GPU needed).

    python benchmarks/attn_regs.py [--batches 1,8,32] [--length 640] [--prefetch 0,1,2] [--caps 0,168,128]

For each batch size the split rule of spense.runtime.attention (as configured by its SPENSE_ATTN_* switches) gives the
keys a split and the programs a launch (B * H * splits).  The kernel is compiled as the engine launches it (fused
prologue, dependent launch, the module's EARLY_KV / SLOT_READ / EARLY_PRO) for ``sm_90a`` with the installed Triton,
under each SPENSE_ATTN_PREFETCH value and register cap (Triton's ``maxnreg``; 0: none); ``cuobjdump -res-usage`` on the
cubin (assembled by the ptxas Triton bundles, as on the device) gives its registers a thread and its stack frame and
local bytes (spills).  Then, from the register file (64 Ki registers a SM, allocated 256 a warp), shared memory
(228 KiB a SM, 1 KiB reserved a CTA) and 32 CTAs a SM at most: the programs that fit a SM at once, and the waves a
launch takes on ``--sms`` SMs.  The device's Triton may differ from this one: the
script prints its version (the counts in docs/runtime.md are Triton 3.6's, the device's).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import tempfile

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


def compile_split(split: int, prefetch: int, cap: int, D: int = 128, gp: int = 16):
    """(registers a thread, spill bytes (stack frame + local), shared bytes) of the fused split kernel at ``split``
    keys, compiled for sm_90a under PREFETCH ``prefetch`` and register cap ``cap`` (0: none)."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = attention._decode_attn_split
    const = dict(D=D, GP=gp, BLOCK=attention.BLOCK, SPLIT=split, DOT_DT=tl.bfloat16, FUSED=True, NORM=True, PDL=True,
                 EARLY=int(attention.EARLY_KV), SLOT_READ=attention.SLOT_READ, PRO=attention.EARLY_PRO,
                 PREFETCH=prefetch)
    f32 = {"m_ptr", "o_ptr", "ml_ptr", "cos_ptr", "sin_ptr"}
    sig = {}
    for n in fn.arg_names:
        if n in const:
            sig[n] = "constexpr"
        elif n.endswith("_ptr"):
            sig[n] = "*fp32" if n in f32 else "*i64" if n == "pos_ptr" else "*bf16"
        else:
            sig[n] = "fp32" if n in ("scale", "eps") else "i32"
    opts = {"num_warps": attention.SPLIT_WARPS, "enable_fp_fusion": True}  # Triton's default at launch (3.6: fused)
    if attention.SPLIT_STAGES is not None:
        opts["num_stages"] = attention.SPLIT_STAGES
    if cap:
        opts["maxnreg"] = cap
    src = ASTSource(fn=fn, signature=sig, constexprs={(fn.arg_names.index(k),): v for k, v in const.items()})
    k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(k.asm["cubin"])
        f.flush()
        out = subprocess.run([_cuobjdump(), "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", out)
    if m is None:
        raise SystemExit(f"attn_regs: no resource line in cuobjdump's output: {out[-300:]!r}")
    reg, stack, shared, local = (int(g) for g in m.groups())
    return reg, stack + local, shared + int(k.metadata.shared)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--length", type=int, default=640, help="keys read (640: the engine's after a prompt of 512)")
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--group", type=int, default=4, help="query heads per KV head")
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--prefetch", default="0,1,2", help="SPENSE_ATTN_PREFETCH values")
    ap.add_argument("--caps", default="0,168,128", help="register caps (0: none)")
    ap.add_argument("--sms", type=int, default=132, help="SMs of the GPU (H100 SXM and H200: 132)")
    ap.add_argument("--out", default=None, help="append a JSON row per kernel here")
    a = ap.parse_args(argv)
    import triton

    H, L, gp = a.kv_heads, a.length, max(16, triton.next_power_of_2(a.group))  # the launch's padded query rows
    print(f"Triton {triton.__version__}, sm_90a; H={H} G={a.group} D={a.head_dim} L={L}, {a.sms} SMs")
    rows = []
    for B in (int(b) for b in a.batches.split(",")):
        split = attention.split_length(B, H, L)
        programs = B * H * -(-L // split)
        for pf in (int(p) for p in a.prefetch.split(",")):
            for cap in (int(c) for c in a.caps.split(",")):
                regs, local, smem = compile_split(split, pf, cap, a.head_dim, gp)
                fit = ctas_per_sm(regs, attention.SPLIT_WARPS, smem)
                waves = programs / (fit * a.sms) if fit else float("inf")
                row = {"B": B, "split": split, "programs": programs, "prefetch": pf, "maxnreg": cap, "regs": regs,
                       "spill_bytes": local, "smem": smem, "ctas_per_sm": fit, "waves": round(waves, 2),
                       "triton": triton.__version__}
                rows.append(row)
                print(f"B={B:<3} split {split:4d}  {programs:4d} programs  prefetch {pf}  cap {cap or '-':>3}: "
                      f"{regs:3d} registers, {local:4d} B spilled, {smem:6d} B shared -> {fit} a SM, "
                      f"{waves:.2f} waves")
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    main()
