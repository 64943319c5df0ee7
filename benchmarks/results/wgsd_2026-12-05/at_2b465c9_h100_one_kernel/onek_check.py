"""ONE_KERNEL against the two kernels on the GPU: same bits (plain and fused, forms), counts back at 0, repeated
launches (a race in the last-program merge would show as a difference in some of them)."""
import sys
import torch
sys.path.insert(0, "tests")
from spense.runtime import attention as A
from test_attention import _case, _fused_case
import os
DEV = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run of this script under TRITON_INTERPRET=1
SMALL = DEV == "cpu"
gen = torch.Generator().manual_seed(0)
bad = 0
shapes = [(2, 2, 4, 32, 100)] if SMALL else [(1, 8, 4, 128, 640), (8, 8, 4, 128, 640), (8, 8, 8, 128, 640),
                                             (32, 8, 4, 128, 640), (3, 2, 5, 64, 1100)]
for B, H, G, D, L in shapes:
    q, k, v, mask = _case(B, H, G, D, L, L, gen, device=DEV, dtype=torch.bfloat16)
    A.ONE_KERNEL = False
    y0 = A.launch_decode_attention(q, k, v, mask)
    A.ONE_KERNEL = True
    diff = 0
    for _ in range(2 if SMALL else 10):
        y = A.launch_decode_attention(q, k, v, mask)
        diff += int(not torch.equal(y, y0))
    z = int(A.counters(q.device, B * H).abs().sum())
    print(f"plain B={B} H={H} G={G} L={L}: {diff} launches differ, counts {z}")
    bad += diff + z
H, D, L, S, pos = (2, 32, 100, 128, 70) if SMALL else (8, 128, 600, 640, 570)
for B, form in ((1, 1), (8, 6)) if SMALL else ((1, 1), (8, 6), (8, 4), (8, 0)):
    q, k, v, qw, kw, cos, sin, kc, vc, p, mask = _fused_case(B, B, H, 4, D, L, S, pos, True, gen, device=DEV,
                                                              dtype=torch.bfloat16)
    outs = []
    for one in (False, True):
        A.ONE_KERNEL = one
        k2, v2 = kc.clone(), vc.clone()
        if DEV == "cuda":  # EARLY_KV reads the cache before its wait: the clone must be done (the engine writes none)
            torch.cuda.synchronize()
        outs.append((A.launch_decode_attention(q, k2[:, :, :L], v2[:, :, :L], mask,
                                               fused=(k, v, qw, kw, cos, sin, p, 1e-6), form=form), k2, v2))
    same = all(torch.equal(a, b) for a, b in zip(*outs))
    print(f"fused B={B} form={form}: same bits {same}")
    bad += int(not same)
print("ONE_KERNEL check:", "PASS" if bad == 0 else f"FAIL ({bad})")
