"""Does an L2 prefetch issued after one GEMM make the next GEMM faster?  (spense.runtime.prefetch)

A CUDA graph of ``--n`` distinct ``(N, K)`` bf16 weights (together far past L2), each step: cuBLAS
``x @ W_i.T`` at M = 1, then the prefetch of the first ``budget`` MB of ``W_{i+1}``, then an idle gap of
``gap`` µs (``torch.cuda._sleep``, standing in for the norms and attention between two GEMMs).  Per
(gap, budget): µs per step, and the GEMM's share after the same graph without GEMMs (sleep and
prefetch alone) is taken off.  Prints a markdown table; ``--json`` appends the rows.

    python benchmarks/l2_prefetch_probe.py [--shape 4096x4096] [--gaps 0,5,10] [--budgets 0,8,16,32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

import torch
import torch.nn.functional as F

from spense.runtime import prefetch


def sleep_cycles(us: float, mhz: float = 1980.0) -> int:
    """GPU clock cycles for ``us`` microseconds at ``mhz`` (the H200's top SM clock; the gap's real
    length is in the graph without GEMMs, which is taken off)."""
    return int(us * mhz)


def timed_graph(body, reps: int = 20) -> float:
    """ms per replay of the CUDA graph of ``body`` (warm-up outside the capture)."""
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        body()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=s):
            body()
    g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        g.replay()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="4096x4096", help="N x K of each weight (default: Qwen3-8B o_proj)")
    ap.add_argument("--n", type=int, default=24, help="distinct weights per graph")
    ap.add_argument("--gaps", default="0,5,10", help="idle µs after each GEMM")
    ap.add_argument("--budgets", default="0,8,16,24,32", help="MB prefetched after each GEMM")
    ap.add_argument("--json", default=None, help="append the rows to this JSON-lines file")
    a = ap.parse_args()
    N, K = (int(v) for v in a.shape.lower().split("x"))
    dev = torch.device("cuda")
    ws = [torch.randn(N, K, device=dev, dtype=torch.bfloat16) for _ in range(a.n)]
    x = torch.randn(1, K, device=dev, dtype=torch.bfloat16)
    wbytes = N * K * 2
    commit = os.environ.get("SPENSE_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"# L2 prefetch probe: {torch.cuda.get_device_name(0)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"commit {commit}, weight {N}x{K} bf16 ({wbytes / 1e6:.1f} MB) x {a.n}, M = 1\n")
    print("| gap µs | budget MB | step µs | GEMM µs | GEMM TB/s |")
    print("|---|---|---|---|---|")
    rows = []
    for gap in (float(v) for v in a.gaps.split(",")):
        cyc = sleep_cycles(gap)
        for mb in (float(v) for v in a.budgets.split(",")):
            keys = [prefetch.register([ws[(i + 1) % a.n]], int(mb * 2 ** 20)) if mb > 0 else 0 for i in range(a.n)]

            def body(gemm: bool = True, keys=keys, cyc=cyc):
                for i in range(a.n):
                    y = F.linear(x, ws[i]) if gemm else x
                    if keys[i]:
                        prefetch.l2_prefetch(y, keys[i])
                    if cyc:
                        torch.cuda._sleep(cyc)

            step = timed_graph(body) * 1e3 / a.n
            rest = timed_graph(lambda: body(False)) * 1e3 / a.n
            gemm = step - rest
            rows.append({"gap_us": gap, "budget_mb": mb, "step_us": step, "gemm_us": gemm,
                         "tbps": wbytes / (gemm * 1e-6) / 1e12, "shape": a.shape, "commit": commit,
                         "device": torch.cuda.get_device_name(0)})
            print(f"| {gap:g} | {mb:g} | {step:.2f} | {gemm:.2f} | {rows[-1]['tbps']:.2f} |", flush=True)
    if a.json:
        with open(a.json, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
