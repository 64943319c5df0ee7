"""Where a decode step's GPU time goes, per op class: torch.profiler over a few steps of an
:class:`~spense.engine.generate.Engine` (``python -m spense.engine.measure --profile``).

Two views: each kernel's own time summed per class (:func:`profile_step`'s return; under dependent launch a
kernel's time holds its wait for the one before, so that is an upper bound per class), and the step's wall time
partitioned among the classes (:func:`exclusive_ms`: each kernel is given only what it adds after the ones before
it have ended).
"""

from __future__ import annotations

import torch

OP_CLASSES = (  # (class, substrings of the kernel name), first match wins
    # the mma.sp kernels, the warpgroup forms (spense_wgsp_ws_kernel, spense_wgsd_sk_kernel) and the Triton one
    ("sparse kernel", ("mmasp", "spense_wgs", "spense_decode")),
    # the FP8 dense baseline's Triton kernel (also the dense BF16 streaming kernel, runtime.dense) and its split-K sum
    ("stream gemm", ("w8a16", "fp8_w8a16", "sum_splits")),
    ("act quant", ("act_quant", "quant_rows")),
    # before the GEMMs: cuDNN's SDPA kernels hold "sm90_"; float32 cuBLAS kernels ("kernel<float") are
    # the math backend's attention (the linears run in bf16 / FP8)
    ("attention", ("flash", "attention", "decode_attn", "sdpa", "fmha", "softmax", "bmm", "kernel<float")),
    # "_mm_": a matmul Inductor generated itself (fused with the ops around it)
    ("dense gemm", ("gemm", "nvjet", "xmma", "cutlass", "gemv", "sm90_", "splitk", "_mm_")),
    ("unpack/copy", ("memcpy", "memset", "scatter", "gather", "index")),
)


# the custom ops that Inductor runs as extern kernels: a fused Triton kernel of Inductor's that reads or feeds one
# (a norm after a linear) carries the op's name in its own (triton_red_fused__to_copy_add_dense_stream_mm_mean_...)
# and is no GEMM for that
_EXTERN_OPS = ("decode_attention_fused", "decode_attention", "dense_stream_mm", "fp8_w8a16_mm", "fp8_quant_rows",
               "linear_apply", "mmasp_out", "mmasp", "triton_decode", "wgsd_apply")


def op_class(name: str) -> str:
    """The op class (:data:`OP_CLASSES`) of a profiled kernel's name; an Inductor kernel's name is read without
    the names of our custom ops in it (``_EXTERN_OPS``)."""
    n = name.lower()
    if n.startswith("triton_") and "_fused_" in n:
        head, tail = n.split("_fused_", 1)
        for op in _EXTERN_OPS:
            tail = tail.replace(op, "")
        n = f"{head}_fused_{tail}"
    for cls, keys in OP_CLASSES:
        if any(k in n for k in keys):
            return cls
    return "other"


def exclusive_ms(spans: list[tuple[float, float, str]]) -> dict[str, float]:
    """The step's wall time partitioned by op class: kernels ``(start, end, class)`` (µs, one stream) in order of
    start, kernel ``i`` is given ``end_i - max(start_i, E_i)`` (0 if negative), ``E_i = max_{j < i} end_j``, and
    ``"idle"`` the gaps ``start_i - E_i > 0``; in ms.  Under dependent launch a kernel starts before the one it
    waits for ends and its own time holds that wait; here it is given only what it adds after the ones before it
    ended, so the classes add up to ``max end - min start`` (the profiler's sum per class is an upper bound)."""
    out: dict[str, float] = {}
    edge = None
    for start, end, cls in sorted(spans):
        if edge is not None and start > edge:
            out["idle"] = out.get("idle", 0.0) + (start - edge) / 1e3
        lo = start if edge is None else max(start, edge)
        out[cls] = out.get(cls, 0.0) + max(0.0, end - lo) / 1e3
        edge = end if edge is None else max(edge, end)
    return out


def profile_step(eng, state, steps: int = 5, top_n: int = 15, kernels: list | None = None,
                 exclusive: dict | None = None) -> dict[str, float]:
    """GPU ms per decode step by op class (:data:`OP_CLASSES`), torch.profiler over ``steps`` steps;
    the ``top_n`` kernels by time are printed, and ``kernels`` (if given) receives the 60 longest as
    ``[name, op class, ms per step, launches per step]``; ``exclusive`` (if given) the step's wall time per class
    (:func:`exclusive_ms`, per step, with ``"total"``)."""
    from torch.profiler import ProfilerActivity, profile

    nxt, pos, start = state
    eng.step(nxt, pos, start)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(steps):
            nxt, _ = eng.step(nxt, pos + i, start)
        torch.cuda.synchronize()
    out: dict[str, float] = {}
    per_kernel: dict[str, list] = {}
    spans = []
    for ev in prof.events():
        if getattr(ev, "device_type", None) is not None and str(ev.device_type).endswith("CUDA"):
            c = op_class(ev.name)
            tr = getattr(ev, "time_range", None)
            if tr is not None:
                spans.append((tr.start, tr.end, c, ev.name[:80]))
            out[c] = out.get(c, 0.0) + ev.device_time / 1e3 / steps
            k = per_kernel.setdefault(ev.name[:80], [0.0, 0])
            k[0] += ev.device_time / 1e3 / steps
            k[1] += 1
    out["total"] = sum(out.values())
    if exclusive is not None:
        exclusive.update({k: round(v / steps, 4) for k, v in exclusive_ms([t[:3] for t in spans]).items()})
        exclusive["total"] = round(sum(exclusive.values()), 4)
        print("profile wall time per class (ms per step):", exclusive)
        per_name = exclusive_ms([(a, b, n) for a, b, _, n in spans])
        exclusive["kernels"] = [[n, round(v / steps, 4)] for n, v in sorted(per_name.items(), key=lambda kv: -kv[1])
                                [:30]]
    ranked = sorted(per_kernel.items(), key=lambda kv: -kv[1][0])
    if kernels is not None:
        kernels.extend([name, op_class(name), round(ms, 4), n / steps] for name, (ms, n) in ranked[:60])
    top = ranked[:top_n]
    print("profile top kernels (ms per step, launches per step):")
    for name, (ms, n) in top:
        print(f"  {ms:8.4f} {n / steps:6.1f}  {name}")
    return {k: round(v, 4) for k, v in out.items()}
