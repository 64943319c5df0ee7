"""Where a launch of the stream-K decode form spends its time, per CTA (runs on the device machine; sm_90a).

For Spense layers of the Qwen3 shapes (25 % dense column blocks, random weights; bf16, or e4m3 on x's f16
operand as the engine runs them) and each grid asked (``--splits``: -1 whole shares, the library's default,
:func:`spense.runtime.wgsp.wgsd_sk_ctas`; 0 one CTA per SM; k >= 1 k CTAs per row block of 128 rows), the last of
``--reps`` back-to-back launches records four ``%globaltimer`` clocks per CTA (csrc/spense_wgsd.cuh: entry, the
first operands in shared memory, the last MMAs done, exit).  Printed per launch as quantiles over the CTAs
(``fill``: entry to first operands; ``stream``: first operands to last MMAs; ``tail``: last MMAs to the kernel's
end, the epilogue, the split blocks' sums and the wait for the slowest CTA; ``skew``: entry after the first CTA's)
and written to ``--out/sk_timeline.jsonl``:

    PYTHONPATH=src python3 benchmarks/sk_timeline.py --out $OUT [--shapes 8B.o,8B.qkv] [--ms 1,16,32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import SHAPES, make_weight  # noqa: E402
from spense.format import pack  # noqa: E402
from spense.runtime import SpenseLinear, mmasp, wgsp  # noqa: E402
from spense.runtime.xops import f16_operand  # noqa: E402


def quantiles(v: list[float]) -> dict:
    s = sorted(v)
    return {"p50": s[len(s) // 2], "max": s[-1]}


def timeline(kw, x: torch.Tensor, split: int, reps: int, n_sm: int) -> dict:
    """Four clocks per CTA of the last of ``reps`` launches of the stream-K form under ``split``, as quantiles
    in µs."""
    trace = torch.zeros(4 * n_sm, dtype=torch.int64, device=x.device)
    for r in range(reps):
        y = wgsp.wgsp_forward(kw, x, decode=True, stream_k=True, split=split, trace=trace if r == reps - 1 else None)
        if y is None:
            raise RuntimeError("the stream-K form declined this layer")
    torch.cuda.synchronize()
    t = trace.view(-1, 4).cpu()
    t = t[t[:, 0] > 0].double() * 1e-3  # the CTAs launched (ns -> µs)
    t0, t3 = t[:, 0].min(), t[:, 3].max()
    return {"ctas": int(t.shape[0]), "span_us": float(t3 - t0),
            "skew": quantiles((t[:, 0] - t0).tolist()), "fill": quantiles((t[:, 1] - t[:, 0]).tolist()),
            "stream": quantiles((t[:, 2] - t[:, 1]).tolist()), "tail": quantiles((t3 - t[:, 2]).tolist())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "out"))
    ap.add_argument("--shapes", default="8B.qkv,8B.o,8B.gate_up,8B.down")
    ap.add_argument("--ms", default="1,16,32")
    ap.add_argument("--dtypes", default="fp8,bf16")
    ap.add_argument("--splits", default="-1,0,2,3,4")
    ap.add_argument("--reps", type=int, default=5)
    argv = sys.argv[1:]
    for i, arg in enumerate(argv[:-1]):  # "--splits -1,0,2" would read -1,0,2 as an option: join it
        if arg == "--splits" and argv[i + 1].startswith("-"):
            argv[i:i + 2] = [f"--splits={argv[i + 1]}"]
            break
    a = ap.parse_args(argv)
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0):
        sys.exit("sk_timeline: needs an sm_90 GPU")
    mmasp.load_extension()
    if mmasp._EXT_ARCH != "90a":
        sys.exit("sk_timeline: the extension was not built for sm_90a")
    shapes = {name: (n, k) for name, n, k in SHAPES}
    n_sm = torch.cuda.get_device_properties(0).multi_processor_count
    os.makedirs(a.out, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    with open(os.path.join(a.out, "sk_timeline.jsonl"), "a") as f:
        for name in a.shapes.split(","):
            n, k = shapes[name]
            w, lay = make_weight(n, k, "cols", 0.25, gen)
            for dt in a.dtypes.split(","):
                kw = SpenseLinear(pack(w, lay, fp8=dt == "fp8"), backend="auto", name=name)._kw()
                for m in (int(v) for v in a.ms.split(",")):
                    x = torch.randn(m, k, generator=gen).to("cuda", torch.bfloat16)
                    if wgsp.wgsd_f16_x(kw, m):
                        x = f16_operand(x)
                    for split in (int(v) for v in a.splits.split(",")):
                        row = {"shape": name, "dtype": dt, "M": m, "split": split,
                               "grid": wgsp.wgsd_sk_ctas(kw, n_sm, split), **timeline(kw, x, split, a.reps, n_sm)}
                        f.write(json.dumps(row) + "\n")
                        print(f"{name:11s} {dt:4s} M={m:<3d} split={split:<2d} CTAs={row['ctas']:<4d} span "
                              f"{row['span_us']:6.2f} us | fill p50 {row['fill']['p50']:5.2f} max "
                              f"{row['fill']['max']:5.2f} | stream p50 {row['stream']['p50']:5.2f} max "
                              f"{row['stream']['max']:5.2f} | tail p50 {row['tail']['p50']:5.2f} max "
                              f"{row['tail']['max']:5.2f} | skew max {row['skew']['max']:4.2f}", flush=True)


if __name__ == "__main__":
    main()
