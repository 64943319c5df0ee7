"""The tail split (SPENSE_WGSP_TAIL=1) under compute-sanitizer memcheck (n39.sh): a 1024-row layer of 2:4 rows at
M = 5100 (split in two launches on 132 SMs) and 300 (not split), each compared with the plain form's bits."""
import os
import sys

import torch

sys.path.insert(0, "tests")
from test_wgsp import compacted  # noqa: E402
from spense.runtime import wgsp  # noqa: E402

m, _, gen = compacted("blocks", 22)
for M in (300, 5100):
    x = torch.randn(M, m.in_features, generator=gen).to("cuda", torch.bfloat16)
    out = {}
    for t in ("0", "1"):
        os.environ["SPENSE_WGSP_TAIL"] = t
        wgsp.wgsp_tail.cache_clear()
        out[t] = wgsp.wgsp_forward(m._kernel, x)
    torch.cuda.synchronize()
    print(M, torch.equal(out["1"], out["0"]), flush=True)
