"""The decode attention kernels alone (spense.runtime.attention), swept over the split kernel's launch, beside torch's
SDPA, in CUDA graphs over one cache per layer (the caches rotated past L2).

    python benchmarks/attn_bench.py [--batches 1,8] [--length 640] [--layers 36] [--out rows.jsonl]

Configs: keys per block, warps, software stages and the program cap of the split kernel (module settings of
spense.runtime.attention), and two with its splits balanced (``SPLIT_BALANCE``, rows marked "balanced"). Then the fused
kernel as the engine runs it (q / k norms, RoPE and the new slot's cache write in the split kernel; rows marked
"fused"), with ``EARLY_KV`` (its first block of keys and values read before the dependent launch's wait; "early_kv"),
``SLOT_READ`` (the new slot read back from the cache; "slot_read"), ``SPLIT_MAXNREG`` (a register cap; "maxnreg=") and
``SPLIT_STAGES`` (the pipeline's depth; "stages=") off and on (``FUSED_SETTINGS``); their error column
is against the fused kernel's output with all off, which must be 0.
``--fused-only``: SDPA and those rows only.
Per config: µs per layer, the K + V bytes read over that time (TB/s) and against the copy rate measured in the same run
(read + write of 1 GiB), and the largest error against the float32 reference.  Qwen3-8B's attention shape by default
(8 KV heads of 4 query heads each, head dim 128).
"""
from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
import torch.nn.functional as F

from spense.runtime import attention


#: the split kernel's module settings the sweep sets (and restores after it)
KNOBS = ("BLOCK", "SPLIT_WARPS", "SPLIT_STAGES", "MAX_PROGRAMS", "SPLIT_BALANCE", "EARLY_KV", "SLOT_READ",
         "SPLIT_MAXNREG")
#: the fused kernel's settings timed: (EARLY_KV, SLOT_READ, SPLIT_MAXNREG (0: none), SPLIT_STAGES (0: Triton's, 3)); the
#: engine's (EARLY_KV and SLOT_READ on, a cap of 128 registers, 2 stages) and each of its parts off.  At B = 8 the
#: kernel takes 151 registers uncapped (3 programs a SM, one wave), 128 capped (4), 87 without EARLY_KV (5)
#: (benchmarks/attn_regs.py, Triton 3.6).  The forty-fourth stop's sweep (wgsd_2026-12-05 bc) also had the key loop's
#: prefetch, 4 and 5 stages and an L2 prefetch, all slower (removed; the code is in fc069a3).
FUSED_SETTINGS = ((False, False, 0, 0), (False, True, 0, 0), (True, False, 0, 0), (True, True, 0, 0),
                  (True, True, 128, 0), (True, True, 0, 2), (True, True, 128, 2), (False, True, 128, 2),
                  (True, False, 128, 2))


def set_knobs(values) -> None:
    """Set :data:`KNOBS` on the module, in order (fewer values: the first ones)."""
    for k, v in zip(KNOBS, values):
        setattr(attention, k, v)


def copy_tbps(nbytes: int = 1 << 30, reps: int = 20) -> float:
    """(bytes read + bytes written) / time of a device-to-device copy of ``nbytes``."""
    a = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(reps):
        b.copy_(a)
    e1.record()
    torch.cuda.synchronize()
    return 2 * nbytes * reps / (e0.elapsed_time(e1) * 1e-3) / 1e12


def graph_us(fn, calls: int, reps: int = 20) -> float:
    """µs per ``fn(i)``, i over ``calls`` layers, captured in one CUDA graph and replayed ``reps`` times."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for i in range(calls):
            fn(i)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(calls):
            fn(i)
    g.replay()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(reps):
        g.replay()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) * 1e3 / (reps * calls)


def fused_rows(B, H, G, D, L, q, ks, vs, mask) -> list:
    """(name, µs, error) of the fused kernel (the engine's: raw q and new k, v; norms, RoPE, the slot written) on the
    module's settings, under each of :data:`FUSED_SETTINGS`; the error is against the output with all of them off."""
    gen = torch.Generator(device="cuda").manual_seed(1)
    kn, vn = (torch.randn(B, H, D, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(2))
    qw, kw = (1 + 0.1 * torch.randn(D, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(2))
    ang = torch.rand(B, D, device="cuda", generator=gen) * 6.28
    cos, sin = ang.cos(), ang.sin()  # outside the timed graph
    pos = torch.tensor([L - 9], device="cuda")  # the last slot the mask leaves visible

    def run(i):
        return attention.launch_decode_attention(q, ks[i], vs[i], mask,
                                                 fused=(kn, vn, qw, kw, cos, sin, pos, 1e-6))

    rows, want = [], None
    for early, slot_read, maxnreg, stages in FUSED_SETTINGS:
        attention.EARLY_KV, attention.SLOT_READ = early, slot_read
        attention.SPLIT_MAXNREG, attention.SPLIT_STAGES = maxnreg, stages or None
        try:
            y = run(0).float()
            us = graph_us(run, len(ks))
        except Exception as e:  # a cap or depth Triton cannot build with: its row says so
            print(f"B={B} maxnreg={maxnreg} stages={stages}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            continue
        want = y if want is None else want
        rows.append(("spense fused" + (" early_kv" if early else "") + (" slot_read" if slot_read else "")
                     + (f" maxnreg={maxnreg}" if maxnreg else "") + (f" stages={stages}" if stages else ""),
                     us, (y - want).abs().max().item()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--length", type=int, default=640,
                    help="keys read (640: the engine's attention length after a prompt of 512; runs before the "
                         "twentieth stop used 576)")
    ap.add_argument("--layers", type=int, default=36, help="caches in the rotation")
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--group", type=int, default=4, help="query heads per KV head")
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--out", default=None, help="append a JSON row per config here")
    ap.add_argument("--fused-only", action="store_true",
                    help="time SDPA and the fused kernel's settings only, not the split kernel's launch sweep")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("attn_bench: needs a CUDA device")
    bw = copy_tbps()
    H, G, D, L, n = a.kv_heads, a.group, a.head_dim, a.length, a.layers
    print(f"copy {bw:.3f} TB/s; H={H} G={G} D={D} L={L}, {n} caches")
    meta = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "copy_tbps": bw, "H": H, "G": G, "D": D, "L": L}
    gen = torch.Generator(device="cuda").manual_seed(0)
    for B in (int(b) for b in a.batches.split(",")):
        q = torch.randn(B, H, G, D, device="cuda", generator=gen, dtype=torch.bfloat16)
        ks = [torch.randn(B, H, L, D, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(n)]
        vs = [torch.randn(B, H, L, D, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(n)]
        mask = torch.zeros(B, L, device="cuda")
        mask[:, L - 8:] = float("-inf")  # the unfilled tail of the bucket
        ref = attention.decode_attention_reference(q, ks[0], vs[0], mask).float()
        kv_bytes = 2 * B * H * L * D * 2
        rows = []
        sdpa_mask = mask[:, None, None, :].to(q.dtype)  # cast once, outside the timed graph

        def sdpa(i):
            return F.scaled_dot_product_attention(q.view(B, H * G, 1, D), ks[i], vs[i], attn_mask=sdpa_mask,
                                                  enable_gqa=True)

        err = (sdpa(0).view(B, H, G, D).float() - ref).abs().max().item()
        rows.append(("sdpa", graph_us(sdpa, n), err))
        old = [getattr(attention, k) for k in KNOBS]
        try:
            for blk, warps, stages, mp, bal in [] if a.fused_only else [
                    *itertools.product((32, 64, 128), (4, 8), (1, 2, 3), (512,), (False,)),
                    (32, 4, 2, 2048, False), (32, 4, 2, 512, True), (64, 4, 2, 512, True)]:
                set_knobs((blk, warps, stages, mp, bal))
                name = f"spense BLOCK={blk} warps={warps} stages={stages} max_programs={mp}" + (
                    " balanced" if bal else "") + f" maxnreg={attention.SPLIT_MAXNREG}"  # the module's cap
                try:
                    err = (attention.launch_decode_attention(q, ks[0], vs[0], mask).float() - ref).abs().max().item()
                    us = graph_us(lambda i: attention.launch_decode_attention(q, ks[i], vs[i], mask), n)
                except Exception as e:  # a config Triton cannot build (shared memory): its row says so
                    print(f"B={B} {name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                    continue
                rows.append((name, us, err))
            set_knobs(old)  # the defaults, then the fused kernel with EARLY_KV and SLOT_READ off and on
            rows += fused_rows(B, H, G, D, L, q, ks, vs, mask)
        finally:
            set_knobs(old)
        for name, us, err in sorted(rows, key=lambda r: r[1]):
            tbps = kv_bytes / (us * 1e-6) / 1e12
            print(f"B={B} {us:7.2f} us/layer  {tbps:5.2f} TB/s ({tbps / bw:4.2f} of copy)  err {err:.2e}  {name}")
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps({**meta, "B": B, "config": name, "us": us, "kv_bytes": kv_bytes,
                                        "tbps": tbps, "max_err": err}) + "\n")


if __name__ == "__main__":
    main()
