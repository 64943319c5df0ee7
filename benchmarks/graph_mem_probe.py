"""What a decode engine holds on the GPU, by where it was allocated: one process, one way of graphing the step.

    python benchmarks/graph_mem_probe.py MODEL --graph tree|plain [--variant dense|spense0.25] [--prompt-len 4096]

Builds the variant as ``spense bench`` does (:func:`spense.engine.measure.build_variant`), makes the engine
(``compile_prefill=False``, as the bench), runs a prefill and 20 decode steps, and prints ``memory_allocated`` after
each phase (and the peak of the setup, then of the run); then the blocks still allocated at the end, grouped by the
Python frames that allocated them (torch's memory history), the largest groups first.  Written for results
wgsd_2026-12-07 es: under ``SPENSE_GRAPH=plain`` the engine held 739 MB (dense) and 269 MB (Spense 25 %) more after
the run than under Inductor's graph trees (et: cuBLAS workspaces).
"""

from __future__ import annotations

import argparse
import collections

import torch

from spense.engine.generate import Engine
from spense.engine.measure import bench_cache, build_variant, weight_bytes


def frames_key(frames: list[dict], depth: int) -> str:
    """The innermost ``depth`` frames of ``spense``/``torch._inductor``/``torch._dynamo`` code, as one line each."""
    keep = [f for f in frames if any(s in f["filename"] for s in ("spense", "_inductor", "_dynamo", "cuda/graphs"))]
    return " <- ".join(f"{f['filename'].rsplit('/', 2)[-1]}:{f['line']}:{f['name']}" for f in keep[:depth]) or "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--graph", default="tree")
    ap.add_argument("--variant", default="dense")
    ap.add_argument("--prompt-len", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=4)
    a = ap.parse_args()
    dev = torch.device("cuda")
    torch.cuda.memory._record_memory_history(max_entries=500_000, stacks="python")
    m, label = build_variant(a.model, a.variant, dev, None, 0, "cols", (1, a.prompt_len))
    mb = lambda: f"{torch.cuda.memory_allocated(dev) / 1e6:.1f} MB"  # noqa: E731
    print(f"{label} {a.variant} graph={a.graph}: weight_bytes {weight_bytes(m)[0] / 1e6:.1f} MB, built {mb()}")
    eng = Engine(m, 1, bench_cache(a.prompt_len, 32), compile=True, compile_prefill=False, graph=a.graph)
    print(f"engine made {mb()} (setup peak {torch.cuda.max_memory_allocated(dev) / 1e6:.1f} MB)")
    torch.cuda.reset_peak_memory_stats(dev)
    prompts = torch.randint(0, m.args.vocab_size, (1, a.prompt_len), generator=torch.Generator().manual_seed(0))
    nxt, _, start, T = eng.prefill(prompts.tolist())
    torch.cuda.synchronize()
    print(f"after the prefill {mb()}")
    for i in range(20):
        nxt, _ = eng.step(nxt, T + i, start)
        if i in (0, 2):
            torch.cuda.synchronize()
            print(f"after step {i + 1} {mb()}")
    torch.cuda.synchronize()
    print(f"after 20 steps {mb()} (run peak {torch.cuda.max_memory_allocated(dev) / 1e6:.1f} MB)")
    groups: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for seg in torch.cuda.memory._snapshot()["segments"]:
        for b in seg["blocks"]:
            if b["state"] == "active_allocated":
                frames = b.get("frames") or ((b.get("history") or [{}])[-1].get("frames") or [])
                g = groups[frames_key(frames, a.depth)]
                g[0] += b["size"]
                g[1] += 1
    for k, (n, c) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:12]:
        print(f"{n / 1e6:9.1f} MB {c:5d} blocks  {k}")


if __name__ == "__main__":
    main()
