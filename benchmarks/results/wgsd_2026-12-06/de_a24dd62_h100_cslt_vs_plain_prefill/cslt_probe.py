"""cuSPARSELt (whole weight 2:4) against cuBLAS at M tokens, L2-warm, CUDA events: times, the algorithm the search
picks, and the kernels each launches (torch.profiler).  With `prof`: set up and warm, then one call of each between
cudaProfilerStart/Stop (for ncu --profile-from-start off).  python3 cslt_probe.py N K M [time|prof]"""
import sys

import torch
import torch.nn.functional as F

N, K, M = (int(a) for a in sys.argv[1:4])
mode = sys.argv[4] if len(sys.argv) > 4 else "time"
g = torch.Generator().manual_seed(0)
w = torch.randn(N, K, generator=g).to("cuda", torch.bfloat16)
keep = w.view(N, K // 4, 4).abs().argsort(-1, descending=True)[..., :2]
mask = torch.zeros(N, K // 4, 4, dtype=torch.bool, device="cuda").scatter_(-1, keep, True).view(N, K)
w24 = w * mask
x = torch.randn(M, K, generator=g).to("cuda", torch.bfloat16)
xT = x.t()
pk = torch._cslt_compress(w24)
alg = int(torch._cslt_sparse_mm_search(pk, xT))
ref = F.linear(x, w24).float()
err = ((torch._cslt_sparse_mm(pk, xT, alg_id=alg).t().float() - ref).norm() / ref.norm()).item()
calls = {"cublas": lambda: F.linear(x, w24), "cslt": lambda: torch._cslt_sparse_mm(pk, xT),
         "cslt_tuned": lambda: torch._cslt_sparse_mm(pk, xT, alg_id=alg)}
for f in calls.values():
    for _ in range(3):
        f()
torch.cuda.synchronize()
if mode == "prof":
    torch.cuda.cudart().cudaProfilerStart()
    for f in calls.values():
        f()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()
    sys.exit(0)
out = {}
for name, f in calls.items():
    ts = []
    for _ in range(3):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(20):
            f()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) / 20 * 1e3)
    out[name] = min(ts)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as p:
        f()
        torch.cuda.synchronize()
    ks = sorted({e.name for e in p.events() if e.device_type == torch.autograd.DeviceType.CUDA})
    print(f"kernels {name}: {' | '.join(k[:160] for k in ks)}")
fl = 2 * M * N * K
print(f"N={N} K={K} M={M} alg={alg} rel_err={err:.2e} " + " ".join(
    f"{k}={v:.1f}us({fl / v / 1e6:.0f}TF/s,{out['cublas'] / v:.3f}x)" for k, v in out.items()))
