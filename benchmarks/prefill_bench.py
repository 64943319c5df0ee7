"""Prefill of compacted Spense layers against dense, per Qwen3 shape (runs on the device machine).

    PYTHONPATH=src python3 benchmarks/prefill_bench.py --out $OUT [--ms 512,2048] [--shapes 8B.down,...]

Per (shape, dtype, M), 25 % dense column blocks (what the engine selects), CUDA graphs, weights rotated
over copies of >= 256 MB in all (L2 is 50 MB), each GEMM's timing the median of ``--rounds`` rounds (default 4)
in which the GEMM timings below are taken in turn (the GPU's power cap slows a sustained GEMM: :func:`interleaved`;
the unpack is timed once, before them):

* ``dense``: ``F.linear(x, W)`` on a kept bf16 weight (cuBLAS);
* ``dense_fp8`` (fp8 rows): the FP8 dense baseline (``Fp8Linear``, kernel ``auto``);
* ``spense``: the compacted ``SpenseLinear`` at M, no dense copy kept (``auto``: above M = 64 the sparse warpgroup
  MMA GEMM below where it applies, bf16 on sm_90, else a transient unpack of the kernel layout + ``F.linear``);
* ``spense_e4m3`` (fp8 rows): the same under ``SPENSE_FP8_PREFILL=fp8``: the e4m3 weights unpacked
  and multiplied by the FP8 dense baseline's kernel for the shape and M;
* ``spense_wgsp`` (bf16 rows, sm_90 builds): the same under ``SPENSE_WGSP_MIN_M=65``: the kernel layout
  itself on sparse warpgroup MMA (``spense.runtime.wgsp``) in its plain form (no tail split), with its relative
  difference to ``spense``.  Where ``spense`` takes that same code (bf16 on sm_90 where the tail split does not
  split), the gap between the two columns is the timing's spread;
* ``spense_wgsp_cl2``: the same in clusters of two CTAs sharing each weight load
  (``SPENSE_WGSP_CLUSTER=1``), with its relative difference to ``spense``;
* ``spense_wgsp_ps1`` / ``spense_wgsp_ps2``: the same persistent (``SPENSE_WGSP_PERSIST=1`` / ``2``: CTAs of 16 /
  8 row tiles walking the tiles), with whether it gives ``spense_wgsp``'s bits;
* ``spense_wgsp_tail``: the same with its last wave split (``SPENSE_WGSP_TAIL=1``, the default), with whether it
  gives ``spense_wgsp``'s bits;
* ``spense_wgsp_nt256``: the same on CTAs of 8 row tiles and 256 tokens (``SPENSE_WGSP_NT=256``), with whether it
  gives ``spense_wgsp``'s bits;
* ``unpack``: the Triton unpack alone, with GB/s = (layout bytes read + ``W`` bytes written) / time
  against the copy bandwidth measured in the same run; first checked bit for bit against the tensor-op
  reference (``unpack_e4m3``: the e4m3 unpack, checked against it).  (benchmarks/results/
  prefill_2026-12-01 also timed the per-element sparse unpack that the grouped one replaced:
  ``unpack_elem``.)

Writes ``prefill_bench.json`` and ``prefill_bench.md`` under ``--out``.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from bench_common import SHAPES, make_weight, prefill_parser, run_meta, save_rows, time_graph  # noqa: E402
from spense.format import pack  # noqa: E402
from spense.runtime.fp8 import Fp8Linear, quantize_weight  # noqa: E402
from spense.runtime.linear import SpenseLinear  # noqa: E402
from spense.runtime.mmasp import unpack_kernel_layout  # noqa: E402
from spense.runtime.unpack import unpack_kernel_layout_triton, unpack_weight_e4m3  # noqa: E402
from spense.runtime.wgsp import wgsp_cluster, wgsp_forward, wgsp_min_m, wgsp_nt, wgsp_persist, wgsp_tail  # noqa: E402


# the read-once switches the prefill forms read, and the plain form's values of those that pick the form
READ_ONCE = (wgsp_min_m, wgsp_cluster, wgsp_persist, wgsp_tail, wgsp_nt)
PLAIN = {"SPENSE_WGSP_CLUSTER": "0", "SPENSE_WGSP_PERSIST": "0", "SPENSE_WGSP_TAIL": "0", "SPENSE_WGSP_NT": "128"}


@contextlib.contextmanager
def switches(**env):
    """The read-once ``SPENSE_*`` switches ``env`` set for the block (their caches cleared in and out)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    for f in READ_ONCE:
        f.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        for f in READ_ONCE:
            f.cache_clear()


def layout_bytes(kw) -> int:
    """Bytes of the kernel layout that the unpack reads (values, metadata, dense fragments, scales)."""
    ts = [kw.sv, kw.sm, kw.dv] + ([kw.wscale] if kw.fp8 else [])
    return sum(t.numel() * t.element_size() for t in ts)


def interleaved(plan, rounds: int) -> tuple[dict, dict]:
    """Each entry of ``plan`` ((name, switches, fns)) timed once a round (:func:`time_graph`), the entries in turn,
    in reverse order every other round, after one untimed round that brings the GPU to the clock a sustained load
    gives it; the median over the rounds per name, and every round's time.  A GEMM at these sizes holds the GPU at its
    power cap: in results cm (wgsd_2026-12-06, H100) the SM clock fell from 1980 to 1425-1590 MHz within 0.2 s of a
    sustained GEMM (clock-event reason SW power cap), cuBLAS on 32B.gate_up at M = 2048 went 1.40 -> 1.65 ms and the
    sparse kernel 1.20 -> 1.42 ms as the load went on.  Timed one after the other, whichever goes second runs slower;
    taken in turn, an even number of rounds puts each entry first as often as last."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    for name, env, fns in plan:  # the untimed round
        with switches(**env):
            time_graph(fns)
    ts = {name: [] for name, _, _ in plan}
    for r in range(rounds):
        for name, env, fns in (plan if r % 2 == 0 else plan[::-1]):
            with switches(**env):
                ts[name].append(time_graph(fns))
    return {name: statistics.median(v) for name, v in ts.items()}, ts


def cell(sname: str, N: int, K: int, fp8: bool, ms, gen, bw: float, min_bytes: float, rounds: int = 4) -> list[dict]:
    w0, lay = make_weight(N, K, "cols", 0.25, gen)
    ncop = max(1, min(8, math.ceil(min_bytes / (N * K * 2))))
    ws = [w0] + [w0 + 0 for _ in range(ncop - 1)]
    layers = [SpenseLinear(pack(w, lay, fp8=fp8), backend="auto", name=sname).compact() for w in ws]
    kws = [L._kernel for L in layers]
    ref = unpack_kernel_layout(kws[0], lay, torch.bfloat16)
    exact = torch.equal(unpack_kernel_layout_triton(kws[0], lay), ref)
    exact8 = fp8 and unpack_weight_e4m3(kws[0], lay, ref=ref) is not None  # checked once per layout kind
    del ref
    f8 = [Fp8Linear(*quantize_weight(w)) for w in ws] if fp8 else None
    rb = layout_bytes(kws[0])
    t_un = time_graph([lambda kw=kw: unpack_kernel_layout_triton(kw, lay) for kw in kws])
    t_un8 = time_graph([lambda kw=kw: unpack_kernel_layout_triton(kw, lay, torch.float8_e4m3fn) for kw in kws]) \
        if exact8 else None
    rows = []
    for M in ms:
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        spense = [lambda L=L: L(x) for L in layers]
        plan = [("dense", {}, [lambda w=w: F.linear(x, w) for w in ws]), ("spense", {}, spense)]
        if fp8:
            plan.append(("dense_fp8", {}, [lambda q=q: q(x) for q in f8]))
            if exact8:
                plan.append(("spense_e4m3", {"SPENSE_FP8_PREFILL": "fp8"}, spense))
        with switches(**PLAIN):  # the wgsp GEMM
            wg = None if fp8 else wgsp_forward(kws[0], x)
        same = {}
        if wg is not None:
            sp = layers[0](x).float()  # the default path (unpack + cuBLAS)
            wgsp_diff = ((wg.float() - sp).norm() / sp.norm()).item()
            plan.append(("spense_wgsp", {"SPENSE_WGSP_MIN_M": "65", **PLAIN}, spense))
            with switches(SPENSE_WGSP_CLUSTER="1"):
                wc = wgsp_forward(kws[0], x)
            if wc is not None:
                cl2_diff = ((wc.float() - sp).norm() / sp.norm()).item()
                plan.append(("spense_wgsp_cl2", {"SPENSE_WGSP_MIN_M": "65", **PLAIN, "SPENSE_WGSP_CLUSTER": "1"},
                             spense))
            for k, env in (("ps1", {"SPENSE_WGSP_PERSIST": "1"}), ("ps2", {"SPENSE_WGSP_PERSIST": "2"}),
                           ("tail", {"SPENSE_WGSP_TAIL": "1"}), ("nt256", {"SPENSE_WGSP_NT": "256"})):
                env = {**PLAIN, **env}
                with switches(**env):
                    wp = wgsp_forward(kws[0], x)
                if wp is not None:
                    same[k] = torch.equal(wp, wg)
                    plan.append((f"spense_wgsp_{k}", {"SPENSE_WGSP_MIN_M": "65", **env}, spense))
        res, per_round = interleaved(plan, rounds)
        base = res["dense_fp8"] if fp8 else res["dense"]
        row = {"shape": sname, "N": N, "K": K, "M": M, "dtype": "fp8" if fp8 else "bf16", "dense_ratio": 0.25,
               **{f"{k}_ms": v for k, v in res.items()}, "speedup_vs_dense": base / res["spense"],
               "spense_vs_bf16_dense": res["dense"] / res["spense"],
               "unpack_ms": t_un, "unpack_gbps": (rb + N * K * 2) / t_un / 1e6, "copy_gbps": bw,
               "unpack_exact": exact, "unpack_e4m3_exact": exact8 if fp8 else None,
               **({"unpack_e4m3_ms": t_un8, "unpack_e4m3_gbps": (rb + N * K) / t_un8 / 1e6} if t_un8 else {}),
               **({"speedup_e4m3_vs_dense": base / res["spense_e4m3"]} if "spense_e4m3" in res else {}),
               **({"speedup_wgsp_vs_dense": base / res["spense_wgsp"], "wgsp_rel_diff": wgsp_diff}
                  if "spense_wgsp" in res else {}),
               **({"speedup_wgsp_cl2_vs_dense": base / res["spense_wgsp_cl2"], "wgsp_cl2_rel_diff": cl2_diff}
                  if "spense_wgsp_cl2" in res else {}),
               **{k2: v for k in same for k2, v in ((f"speedup_wgsp_{k}_vs_dense", base / res[f"spense_wgsp_{k}"]),
                                                    (f"wgsp_{k}_same_bits", same[k]))},
               "dense_tflops": 2 * M * N * K / res["dense"] / 1e9, "rounds_ms": per_round}
        rows.append(row)
        print(f"{sname} {row['dtype']} M={M}: dense {res['dense']:.3f} ms, spense {res['spense']:.3f} ms "
              f"({row['speedup_vs_dense']:.2f}x vs {'FP8 ' if fp8 else ''}dense), unpack {t_un:.3f} ms "
              f"({row['unpack_gbps']:.0f} GB/s), exact {exact}"
              + (f", wgsp {res['spense_wgsp']:.3f} ms ({row['speedup_wgsp_vs_dense']:.2f}x, rel diff "
                 f"{row['wgsp_rel_diff']:.1e})" if "spense_wgsp" in res else "")
              + (f", wgsp_cl2 {res['spense_wgsp_cl2']:.3f} ms ({row['speedup_wgsp_cl2_vs_dense']:.2f}x, rel diff "
                 f"{row['wgsp_cl2_rel_diff']:.1e})" if "spense_wgsp_cl2" in res else "")
              + "".join(f", wgsp_{k} {res[f'spense_wgsp_{k}']:.3f} ms "
                        f"({row[f'speedup_wgsp_{k}_vs_dense']:.2f}x, same bits {same[k]})" for k in same),
              flush=True)
    return rows


def write_md(rows, path, meta):
    head = ["shape", "dtype", "M", "dense ms", "FP8 dense ms", "Spense ms", "Spense vs dense", "unpack ms (GB/s)",
            "exact", "Spense e4m3 prefill ms (vs dense)", "e4m3 unpack ms (GB/s)", "Spense wgsp ms (vs dense)",
            "wgsp clusters of 2 ms (vs dense)", "wgsp persistent ms (vs dense)",
            "persistent, CTAs of 8 ms (vs dense)", "wgsp, last wave split ms (vs dense)",
            "wgsp, 256-token CTAs ms (vs dense)"]
    lines = [f"# Prefill, compacted Spense layers vs dense ({meta['device']}, {meta['date']}, commit "
             f"{meta['commit']})", "", f"`{meta['cmd']}`; copy bandwidth {meta['copy_gbps']:.0f} GB/s.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["shape"], r["dtype"], r["M"], f"{r['dense_ms']:.3f}",
                 f"{r['dense_fp8_ms']:.3f}" if "dense_fp8_ms" in r else "–", f"{r['spense_ms']:.3f}",
                 f"{r['speedup_vs_dense']:.2f}×", f"{r['unpack_ms']:.3f} ({r['unpack_gbps']:.0f})", r["unpack_exact"],
                 f"{r['spense_e4m3_ms']:.3f} ({r['speedup_e4m3_vs_dense']:.2f}×)" if "spense_e4m3_ms" in r else "–",
                 f"{r['unpack_e4m3_ms']:.3f} ({r['unpack_e4m3_gbps']:.0f})" if "unpack_e4m3_ms" in r else "–",
                 f"{r['spense_wgsp_ms']:.3f} ({r['speedup_wgsp_vs_dense']:.2f}×)" if "spense_wgsp_ms" in r else "–",
                 f"{r['spense_wgsp_cl2_ms']:.3f} ({r['speedup_wgsp_cl2_vs_dense']:.2f}×)"
                 if "spense_wgsp_cl2_ms" in r else "–"]
        cells += [f"{r[f'spense_wgsp_{k}_ms']:.3f} ({r[f'speedup_wgsp_{k}_vs_dense']:.2f}×"
                  + ("" if r[f"wgsp_{k}_same_bits"] else ", other bits") + ")"
                  if f"spense_wgsp_{k}_ms" in r else "–" for k in ("ps1", "ps2", "tail", "nt256")]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = prefill_parser("512,2048")
    ap.add_argument("--dtypes", default="bf16,fp8")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of the timings taken in turn (median)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {a.rounds}")
    os.makedirs(a.out, exist_ok=True)
    meta = run_meta()
    gen = torch.Generator().manual_seed(0)
    want = a.shapes.split(",")
    rows = []
    for sname, N, K in [s for s in SHAPES if s[0] in want]:
        for dt in a.dtypes.split(","):
            try:
                rows += cell(sname, N, K, dt == "fp8", [int(m) for m in a.ms.split(",")], gen, meta["copy_gbps"],
                             a.min_bytes, a.rounds)
            except Exception as e:  # one shape failing keeps the others' rows
                print(f"{sname} {dt} failed: {type(e).__name__}: {e}", flush=True)
            torch.cuda.empty_cache()
            save_rows(a.out, "prefill_bench", meta, rows, write_md)


if __name__ == "__main__":
    main()
