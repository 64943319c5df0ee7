"""One call per kernel and launch config, small shapes, for ``compute-sanitizer --tool memcheck``
(run by benchmarks/run_linear_v4.sh on the device; prints one line per call, then DONE); the Triton W8A16
kernel on bf16 x and on x's f16 operand (kind ``w8a16h``).  The mma.sp kernel's switches are read once per
process: run it again under ``SPENSE_MMASP_PERSIST=1`` for that form.  On sm_90 also the
sparse warpgroup MMA kernel: its stream-K decode form (bf16 and e4m3, the variants of ``SAN_VARIANTS``,
default 1, 17, 33, 65: tiles of 16, 32 and 64 tokens; the timing-only ones from 128 to 383 at M <= 16 only;
on the default grid and on two CTAs a row block, where 14337 takes clusters, and on two CTAs to three blocks,
split -2, where it takes clusters of two over three blocks),
its cluster decode form, its prefill and the FP8 dense weight as dense rows; a line ending
in False is a form that declined (an extension built for another arch).  ``SAN_PARTS`` picks the groups (default
``mmasp w8a16 wgsp``: the mma.sp and Triton decode kernels, the W8A16 kernel, the warpgroup kernel)."""

import sys
import os

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from spense.format import SpenseLayout, pack  # noqa: E402
from spense.runtime import fp8 as f8  # noqa: E402
from spense.runtime.fp8_dense import (DECODE_CONFIGS, EXTRA_CONFIGS, PREFILL_CONFIG, fp8_w8a16_mm,  # noqa: E402
                                     serial_of)
from spense.runtime.mmasp import mmasp_forward, to_kernel_layout  # noqa: E402
from spense.runtime.triton_kernels import triton_decode_packed  # noqa: E402
from spense.runtime.xops import f16_operand, gathered_fragments, x_perm  # noqa: E402

gen = torch.Generator().manual_seed(0)
VARIANTS = os.environ.get("SAN_VARIANTS", "1 17 33 65").split()
PARTS = os.environ.get("SAN_PARTS", "mmasp w8a16 wgsp").split()  # which of the three groups below run


def packed(axis, N, K, fp8, nd=64):
    idx = torch.arange(nd, 2 * nd) if axis == "cols" else torch.arange(nd)  # whole blocks of 64
    lay = SpenseLayout((N, K), axis, idx)
    full = torch.randn(N, K, generator=gen)
    sp, dn = lay.split(full)
    g = sp.reshape(sp.shape[0], -1, 4)
    keep = torch.rand(g.shape, generator=gen).argsort(-1).argsort(-1) < 2
    return pack(lay.merge((g * keep).reshape(sp.shape), dn), lay, fp8=fp8).to("cuda")


if "mmasp" in PARTS:  # the mma.sp kernel and the Triton decode kernel
    for axis in ("cols", "rows"):
        for fp8 in (False, True):
            p = packed(axis, 96, 320, fp8)
            kw = to_kernel_layout(p, "cuda")
            for M in (1, 16, 32, 64):  # NT = 1, 2, 4, 8
                x = torch.randn(M, 320, device="cuda").to(torch.bfloat16)
                for RT in (1, 2):
                    for xfrag in (False, True):
                        mmasp_forward(kw, x, None, RT, 4, 0, xfrag)
                    if fp8 and M <= 16:  # x's f16 operand: through its fragments, and (RT = 1, M = 1) x_perm
                        xh = f16_operand(x)
                        mmasp_forward(kw, x, None, RT, 4, 0, xf=gathered_fragments(xh, kw.xperm))
                        if RT == 1 and M == 1 and kw.xperm is None:
                            mmasp_forward(kw, x_perm(xh), None, 1, 4, 0, xperm=True)
                    print("mmasp", axis, fp8, M, RT, flush=True)
                    if torch.cuda.get_device_capability()[0] >= 9:  # the bulk-copy kernel, ring of 1 and 3
                        for stages in (1, 3):
                            mmasp_forward(kw, x, None, RT, 2, stages, stages == 3)
                            print("mmasp bulk", axis, fp8, M, RT, stages, flush=True)
                triton_decode_packed(p, x)
                print("triton_decode", axis, fp8, M, flush=True)
if "w8a16" in PARTS:
    wq = torch.randn(100, 300, device="cuda").to(torch.float8_e4m3fn)
    s = torch.rand(100, device="cuda") + 0.5
    serial = tuple(c for c in EXTRA_CONFIGS if serial_of(c))  # split-K in one launch (its tile counters)
    for M in (1, 33, 70):
        x = torch.randn(M, 300, device="cuda").to(torch.bfloat16)
        for cfg in (DECODE_CONFIGS + serial if M <= 64 else (PREFILL_CONFIG,)):
            fp8_w8a16_mm(x, wq, s, *cfg)
            fp8_w8a16_mm(f16_operand(x), wq, s, *cfg, xh=True)  # x's f16 operand (kind w8a16h)
        f8.quantize_rows(x, 80)
        print("w8a16 (bf16 x and the f16 operand) + quant_rows", M, flush=True)
if "wgsp" in PARTS and torch.cuda.get_device_capability() == (9, 0):  # the sparse warpgroup MMA kernel (sm_90a)
    from spense.runtime import wgsp

    for axis in ("cols", "rows"):
        for fp8 in (False, True):  # row tiles in eights: 128 sparse and (rows) 128 dense rows
            kw = to_kernel_layout(packed(axis, 256, 512, fp8, nd=128 if axis == "rows" else 64), "cuda")
            for M in (1, 16, 17, 33, 64):  # stream-K on tiles of 16, 32 and 64 tokens
                x = torch.randn(M, 512, device="cuda").to(torch.bfloat16)
                for v in VARIANTS:  # default: 1, tiles of 64 at every M, two groups in flight, 4 chains
                    if 128 <= int(v) < 384 and M > 16:  # the timing-only variants run at M <= 16 alone
                        continue
                    os.environ["SPENSE_WGSD_EXP"] = v
                    wgsp.wgsd_exp.cache_clear()
                    for split in (None, 2):  # 2: two CTAs a row block (bit 8192: clusters of two)
                        ok = wgsp.wgsp_forward(kw, x, decode=True, stream_k=True, split=split) is not None
                        print("wgsd stream-K", axis, fp8, M, v, split, ok, flush=True)
                if not fp8:
                    ok = wgsp.wgsp_forward(kw, x, decode=True, stream_k=False) is not None
                    print("wgsd clusters", axis, M, ok, flush=True)
            if not fp8:
                ok = wgsp.wgsp_forward(kw, torch.randn(300, 512, device="cuda").to(torch.bfloat16)) is not None
                print("wgsp prefill", axis, ok, flush=True)
        # 24 row blocks on 16 CTAs (split -2: three blocks to two CTAs; bit 8192: clusters of two over three)
        for fp8, K in ((True, 512), (False, 256)):
            kw = to_kernel_layout(packed("cols", 3072, K, fp8), "cuda")
            for M in (1, 33):
                x = torch.randn(M, K, device="cuda").to(torch.bfloat16)
                for v in VARIANTS:
                    if 128 <= int(v) < 384 and M > 16:
                        continue
                    os.environ["SPENSE_WGSD_EXP"] = v
                    wgsp.wgsd_exp.cache_clear()
                    ok = wgsp.wgsp_forward(kw, x, decode=True, stream_k=True, split=-2) is not None
                    print("wgsd stream-K three blocks to two CTAs", fp8, M, v, ok, flush=True)
    os.environ.pop("SPENSE_WGSD_EXP")
    wgsp.wgsd_exp.cache_clear()
    kd = wgsp.dense_fp8_kernel_weights(torch.randn(200, 512, device="cuda").to(torch.float8_e4m3fn),
                                       torch.rand(200, device="cuda") + 0.5)
    for M in (1, 33):
        ok = wgsp.wgsp_forward(kd, torch.randn(M, 512, device="cuda").to(torch.bfloat16), decode=True) is not None
        print("wgsd FP8 dense rows", M, ok, flush=True)
torch.cuda.synchronize()
print("DONE")
