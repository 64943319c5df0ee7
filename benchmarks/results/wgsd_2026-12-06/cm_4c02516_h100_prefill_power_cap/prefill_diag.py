"""The prefill kernel at M = 2048 timed three ways in one process (fiftieth stop, letter cm): eager, 20 calls
between two events after 3 warm calls (the harness's way); one CUDA graph of 4 calls replayed 7 times (prefill_bench's
way); a graph of 20 calls replayed 7 times. cuBLAS (F.linear on the dense weight) beside each, on the 32B and 8B
gate_up shapes with prefill_bench's weights (25 % dense in aligned 64-column blocks)."""
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, "benchmarks")
from bench_common import SHAPES, make_weight  # noqa: E402
from spense.runtime.linear import SpenseLinear  # noqa: E402
from spense.runtime.timing import time_graph  # noqa: E402
from spense.runtime.wgsp import wgsp_forward  # noqa: E402
from spense.format import pack  # noqa: E402


def eager(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / reps


def cell(rnd, sname, gen):
    N, K = dict((n, (a, b)) for n, a, b in SHAPES)[sname]
    w, lay = make_weight(N, K, "cols", 0.25, gen)
    kw = SpenseLinear(pack(w, lay), backend="auto", name=sname).compact()._kernel
    x = torch.randn(2048, K, generator=gen).to("cuda", torch.bfloat16)
    fs = {"wgsp": lambda: wgsp_forward(kw, x), "cublas": lambda: F.linear(x, w)}
    for name, fn in fs.items():
        t0 = time.time()
        r = (eager(fn), time_graph([fn], 4, 7), time_graph([fn], 20, 7), eager(fn))
        print(f"round {rnd} {sname} {name}: eager {r[0] * 1e3:.1f} us, graph4 {r[1] * 1e3:.1f} us, "
              f"graph20 {r[2] * 1e3:.1f} us, eager again {r[3] * 1e3:.1f} us (t={t0:.1f})", flush=True)


gen = torch.Generator().manual_seed(0)
for rnd in range(2):
    for sname in ("32B.gate_up", "8B.gate_up"):
        cell(rnd, sname, gen)
        torch.cuda.empty_cache()
