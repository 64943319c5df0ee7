"""One call of each persistent prefill form (SPENSE_WGSP_PERSIST 1 and 2) per layout kind at M = 300 and 8192, under
compute-sanitizer memcheck (n37.sh); each compared with the plain form's bits."""
import os
import sys

import torch

sys.path.insert(0, "tests")
from test_wgsp import compacted  # noqa: E402
from spense.runtime import wgsp  # noqa: E402

for kind in ("blocks", "rows"):
    m, _, gen = compacted(kind, 21)
    for M in (300, 8192):
        x = torch.randn(M, m.in_features, generator=gen).to("cuda", torch.bfloat16)
        out = {}
        for ps in ("0", "1", "2"):
            os.environ["SPENSE_WGSP_PERSIST"] = ps
            wgsp.wgsp_persist.cache_clear()
            out[ps] = wgsp.wgsp_forward(m._kernel, x)
        torch.cuda.synchronize()
        print(kind, M, {k: torch.equal(v, out["0"]) for k, v in out.items()}, flush=True)
