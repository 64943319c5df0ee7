"""Pruning at scale: a Qwen3-8B- or 32B-shaped model (weights built from its config, no download),
pruned one block at a time on the GPU with 128 x 2048 calibration tokens; wall time and peak GPU and
CPU memory (issue 10, item 6; docs/results.md).

The model is a ``Qwen3ForCausalLM`` of the built-in engine shape (``spense.engine.load.BUILTIN_SHAPES``),
made on the meta device and filled with N(0, 0.02) bf16 weights (norms 1), so building it costs
seconds, not the minutes of HF's initialisers; calibration windows are random token ids (a scale
test: what is timed is the pipeline, not the text).  ``--layers N`` keeps the first N decoder layers
(the 32B shape where the machine's memory asks for it).  The model stays in CPU memory; the pipeline
moves one block at a time to the GPU (``spense.pipeline.prune_loaded``).

    python benchmarks/prune_scale.py --shape qwen3-8b --method sparsegpt --out rows.jsonl
    python benchmarks/prune_scale.py --shape qwen3-tiny --nsamples 4 --seqlen 64 --device cpu  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def hf_model(shape: str, layers: int | None, dtype: torch.dtype = torch.bfloat16):
    """A random ``Qwen3ForCausalLM`` of the built-in engine shape ``shape`` (first ``layers`` layers)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from spense.engine.load import BUILTIN_SHAPES

    a = BUILTIN_SHAPES[shape]
    cfg = Qwen3Config(hidden_size=a["dim"], intermediate_size=a["intermediate_size"],
                      num_hidden_layers=layers or a["n_layer"], num_attention_heads=a["n_head"],
                      num_key_value_heads=a["n_kv_head"], head_dim=a["head_dim"],
                      vocab_size=a["vocab_size"], max_position_embeddings=a["max_positions"],
                      rms_norm_eps=a["eps"], rope_theta=a["rope_theta"],
                      tie_word_embeddings=False)
    with torch.device("meta"):
        model = Qwen3ForCausalLM(cfg)
    model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.data = torch.ones(p.shape, dtype=dtype)
            else:
                p.data = torch.empty(p.shape, dtype=torch.float32).normal_(0, 0.02, generator=g).to(dtype)
    model.model.rotary_emb.__init__(cfg)  # inv_freq on the CPU from the config (to_empty left garbage)
    for name, b in model.named_buffers():
        if b.device.type == "meta" or not torch.isfinite(b).all():
            raise RuntimeError(f"buffer {name} not initialised")
    return model.eval(), cfg


class _RssPeak:
    """Peak resident memory of this process (ru_maxrss) plus a sampler for the current RSS."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            try:
                with open("/proc/self/statm") as f:
                    self.peak = max(self.peak, int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
            except OSError:
                return

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()


def main(argv=None) -> int:
    from spense.hf import resolve_device
    from spense.methods import PruneConfig
    from spense.pipeline import prune_loaded
    from spense.provenance import source_digest

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="qwen3-8b")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--method", default="sparsegpt")
    ap.add_argument("--dense-ratio", type=float, default=None)
    ap.add_argument("--nsamples", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", help="compute dtype of the blocks on the device")
    ap.add_argument("--out", default=None, help="JSON-lines file the row is appended to")
    a = ap.parse_args(argv)
    dev = resolve_device(a.device)
    ratio = a.dense_ratio if a.dense_ratio is not None else (0.25 if a.method == "spense" else 0.0)
    t0 = time.perf_counter()
    with _RssPeak() as rss:
        model, cfg = hf_model(a.shape, a.layers)
        build_s = time.perf_counter() - t0
        g = torch.Generator().manual_seed(0)
        windows = torch.randint(0, cfg.vocab_size, (a.nsamples, a.seqlen), generator=g)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t1 = time.perf_counter()
        cdtype = getattr(torch, a.dtype)
        model.to(cdtype)
        def after_block(i: int) -> None:  # one line per block: a detached run's log shows its pace
            gpu = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else 0.0
            print(f"block {i}: {time.perf_counter() - t1:.1f} s, peak GPU {gpu:.1f} GiB, "
                  f"RSS {rss.peak / 2**30:.1f} GiB", flush=True)

        records = prune_loaded(model, windows, PruneConfig(method=a.method, dense_ratio=ratio), dev,
                               progress=sys.stderr.isatty(), after_block=after_block)
        prune_s = time.perf_counter() - t1
    nparams = sum(p.numel() for p in model.parameters())
    row = {
        "shape": a.shape + (f"[:{a.layers}]" if a.layers else ""), "params": nparams,
        "layers": cfg.num_hidden_layers, "method": a.method, "dense_ratio": ratio,
        "nsamples": a.nsamples, "seqlen": a.seqlen, "device": str(dev), "dtype": a.dtype,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "build_s": build_s, "prune_s": prune_s, "pruned_linears": len(records),
        "peak_gpu_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
        "peak_cpu_rss_bytes": max(rss.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "block_bytes": sum(p.numel() * p.element_size() for p in model.model.layers[0].parameters()),
        "activation_bytes": a.nsamples * a.seqlen * cfg.hidden_size * torch.finfo(cdtype).bits // 8,
        "torch": torch.__version__, "commit": os.environ.get("SPENSE_COMMIT", "unknown"), "src_digest": source_digest(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(row), flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
