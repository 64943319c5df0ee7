"""One prefill GEMM launched a few times, for ncu: `dense` (F.linear, cuBLAS) or `wgsp` (the sparse warpgroup MMA
kernel on the compacted layout, 25 % dense column blocks), shape from bench_common.SHAPES, M tokens."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, "benchmarks")
from bench_common import SHAPES, make_weight  # noqa: E402
from spense.format import pack  # noqa: E402
from spense.runtime.linear import SpenseLinear  # noqa: E402
from spense.runtime.wgsp import wgsp_forward  # noqa: E402

mode, sname, M = sys.argv[1], sys.argv[2], int(sys.argv[3])
N, K = next((n, k) for s, n, k in SHAPES if s == sname)
gen = torch.Generator().manual_seed(0)
w, lay = make_weight(N, K, "cols", 0.25, gen)
x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
if mode == "dense":
    def f():
        return F.linear(x, w)
else:
    kw = SpenseLinear(pack(w, lay), backend="auto", name=sname).compact()._kernel
    del w

    def f():
        return wgsp_forward(kw, x)
ys = [f() for _ in range(4)]
torch.cuda.synchronize()
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(20):
    f()
e.record(); torch.cuda.synchronize()
ms = s.elapsed_time(e) / 20
print(f"{mode} {sname} M={M}: {ms:.4f} ms (L2-warm weights, eager), {2 * M * N * K / ms / 1e9:.0f} TFLOP/s, "
      f"out {tuple(ys[0].shape) if ys[0] is not None else None}, cluster {os.environ.get('SPENSE_WGSP_CLUSTER')}",
      flush=True)
