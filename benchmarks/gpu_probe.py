"""First device run: build the mma.sp extension, pick the metadata layout that is correct."""
import os, sys, time, torch
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
t0 = time.time()
from spense.runtime import mmasp
from spense.format import pack
from spense.runtime.linear import SpenseLinear
sys.path.insert(0, os.path.dirname(__file__))
from bench_common import make_weight, rel_err
ext = mmasp.load_extension(verbose=bool(os.environ.get("VERBOSE")))
print("built in", time.time() - t0, flush=True)
gen = torch.Generator().manual_seed(1)
for ml in ("L2", "L1"):
    mmasp.META_LAYOUT = ml
    for axis, r in (("cols", 0.0), ("cols", 0.25), ("rows", 0.25)):
        w, lay = make_weight(256, 512, axis, r, gen)
        L = SpenseLinear(pack(w, lay), backend="mmasp")
        for M in (1, 7, 16, 33):
            x = torch.randn(M, 512, generator=gen).cuda().bfloat16()
            y = torch.full((M, 256), float("nan"), device="cuda", dtype=torch.bfloat16)
            L.forward_mmasp(x, out=y)
            ref = x.double() @ w.double().T
            print(ml, axis, r, M, rel_err(y, ref), flush=True)
# decide
best = None
for ml in ("L2", "L1"):
    mmasp.META_LAYOUT = ml
    w, lay = make_weight(128, 256, "cols", 0.0, gen)
    L = SpenseLinear(pack(w, lay), backend="mmasp")
    x = torch.randn(8, 256, generator=gen).cuda().bfloat16()
    if rel_err(L.forward_mmasp(x), x.double() @ w.double().T) < 1e-2 and best is None:
        best = ml
open(os.environ.get("OUT", ".") + "/meta_layout.txt", "w").write(str(best))
print("BEST", best)
