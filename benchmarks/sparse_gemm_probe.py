"""What a sparse tensor-core GEMM can give prefill: the library 2:4 GEMMs against cuBLAS dense (device).

    PYTHONPATH=src python3 benchmarks/sparse_gemm_probe.py --out $OUT [--ms 512,2048,8192] [--shapes ...]

Prefill of a compacted Spense layer today unpacks the kernel layout and runs one dense GEMM
(benchmarks/results/prefill_2026-12-01: 0.72-0.78x of dense at M = 2048).  Issue 9 asks for >= 1.2x.
This measures the ceiling before any layout work: per (shape, M), CUDA graphs, weights rotated past L2,

* ``dense``: ``F.linear(x, W)`` (cuBLAS BF16), the baseline;
* ``cslt`` / ``cslt_tuned``: the whole ``W`` 2:4 through cuSPARSELt (``torch._cslt_sparse_mm`` on
  ``W`` compressed, ``x`` transposed), with the default algorithm and with the one
  ``torch._cslt_sparse_mm_search`` picks;
* ``cutlass``: the whole ``W`` 2:4 through torch's CUTLASS semi-structured kernels;
* ``hybrid``: the Spense layer as the engine would run it with a cuSPARSELt copy of its sparse
  region: 75 % of the input columns 2:4 (gathered ``x``, tuned cuSPARSELt), 25 % dense (``addmm``);
* ``compress``: ``torch._cslt_compress`` of the sparse region (what a per-call conversion costs);
* ``dense_fp8`` / ``cslt_fp8`` (``--fp8``): ``torch._scaled_mm`` e4m3 against cuSPARSELt e4m3.

Each 2:4 result is checked against ``F.linear`` on the pruned weight (relative error in the row).
Writes ``sparse_gemm_probe.json`` and ``.md`` under ``--out``.
"""

from __future__ import annotations

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from bench_common import SHAPES, make_weight, prefill_parser, rel_err, run_meta, save_rows, time_graph  # noqa: E402


def tuned(packed, xT, **kw) -> int:
    try:
        return int(torch._cslt_sparse_mm_search(packed, xT, **kw))
    except Exception as e:  # noqa: BLE001 - an older cuSPARSELt: the default algorithm
        print(f"  search failed: {type(e).__name__}: {e}", flush=True)
        return 0


def cutlass_weight(w):
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    SparseSemiStructuredTensor._FORCE_CUTLASS = True
    try:
        return to_sparse_semi_structured(w)
    finally:
        SparseSemiStructuredTensor._FORCE_CUTLASS = False


def timed(res, key, fns):
    try:
        res[key] = time_graph(fns)
    except Exception as e:  # noqa: BLE001 - one path failing keeps the others
        print(f"  {key} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)


def cell(sname, N, K, ms, gen, min_bytes, fp8):
    w24, _ = make_weight(N, K, "cols", 0.0, gen)       # the whole weight 2:4
    wh, lay = make_weight(N, K, "cols", 0.25, gen)     # a Spense layer: 25 % dense column blocks
    sidx, didx = lay.sparse_idx.cuda(), lay.dense_idx.cuda()
    ncop = max(1, min(8, math.ceil(min_bytes / (N * K * 2))))
    ws = [w24] + [w24 + 0 for _ in range(ncop - 1)]
    pk = [torch._cslt_compress(w) for w in ws]
    s_reg = wh.index_select(1, sidx).contiguous()
    hs = [torch._cslt_compress(s_reg) for _ in range(ncop)]
    hd = [wh.index_select(1, didx).contiguous() for _ in range(ncop)]
    try:
        cw = [cutlass_weight(w) for w in ws]
    except Exception as e:  # noqa: BLE001
        print(f"  cutlass weight failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
        cw = None
    rows = []
    for M in ms:
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        xT = x.t()
        ref = F.linear(x, w24)
        alg = tuned(pk[0], xT)
        algh = tuned(hs[0], x.index_select(1, sidx).t())
        err = {"cslt": rel_err(torch._cslt_sparse_mm(pk[0], xT).t(), ref),
               "hybrid": rel_err(torch.addmm(torch._cslt_sparse_mm(hs[0], x.index_select(1, sidx).t(), alg_id=algh),
                                             hd[0], x.index_select(1, didx).t()).t(), F.linear(x, wh))}
        res = {}
        timed(res, "dense", [lambda w=w: F.linear(x, w) for w in ws])
        timed(res, "cslt", [lambda p=p: torch._cslt_sparse_mm(p, xT) for p in pk])
        timed(res, "cslt_tuned", [lambda p=p: torch._cslt_sparse_mm(p, xT, alg_id=alg) for p in pk])
        if cw is not None:
            try:  # torch's CUTLASS 2:4 kernels are built for sm_8x only
                err["cutlass"] = rel_err(F.linear(x, cw[0]), ref)
                timed(res, "cutlass", [lambda c=c: F.linear(x, c) for c in cw])
            except RuntimeError as e:
                print(f"  cutlass failed: {str(e)[:120]}", flush=True)
                cw = None
        timed(res, "hybrid", [lambda p=p, d=d: torch.addmm(
            torch._cslt_sparse_mm(p, x.index_select(1, sidx).t(), alg_id=algh), d, x.index_select(1, didx).t()).t()
            for p, d in zip(hs, hd)])
        if M == ms[0]:
            timed(res, "compress", [lambda: torch._cslt_compress(s_reg)])
        if fp8:
            fp8_cells(res, err, ws, x, ref)
        d = res.get("dense")
        row = {"shape": sname, "N": N, "K": K, "M": M, "alg_id": alg, "alg_id_hybrid": algh,
               **{f"{k}_ms": v for k, v in res.items()},
               **{f"speedup_{k}": d / v for k, v in res.items() if d and k not in ("dense", "compress")},
               **{f"err_{k}": v for k, v in err.items()},
               "dense_tflops": 2 * M * N * K / d / 1e9 if d else None}
        rows.append(row)
        print(f"{sname} M={M}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in res.items()) + " | " +
              ", ".join(f"{k} {row[k]:.2f}x" for k in row if k.startswith("speedup_")), flush=True)
    return rows


def fp8_cells(res, err, ws, x, ref):
    e4 = torch.float8_e4m3fn
    one = torch.ones((), device="cuda")
    w8 = [w.to(e4) for w in ws]
    x8 = x.to(e4)
    try:
        p8 = [torch._cslt_compress(w) for w in w8]
        y = torch._cslt_sparse_mm(p8[0], x8.t(), alpha=one, out_dtype=torch.bfloat16)
        err["cslt_fp8"] = rel_err(y.t(), ref)
        timed(res, "cslt_fp8", [lambda p=p: torch._cslt_sparse_mm(p, x8.t(), alpha=one, out_dtype=torch.bfloat16)
                                for p in p8])
    except Exception as e:  # noqa: BLE001
        print(f"  cslt fp8 failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
    timed(res, "dense_fp8", [lambda w=w: torch._scaled_mm(x8, w.t(), one, one, out_dtype=torch.bfloat16)
                             for w in w8])


def write_md(rows, path, meta):
    keys = ["dense", "cslt", "cslt_tuned", "cutlass", "hybrid", "compress", "dense_fp8", "cslt_fp8"]
    head = ["shape", "M", "dense TFLOP/s"] + [f"{k} ms" for k in keys] + ["hybrid vs dense", "errors"]
    lines = [f"# Library 2:4 GEMMs against cuBLAS dense ({meta['device']}, {meta['date']}, commit {meta['commit']})",
             "", f"`{meta['cmd']}`; copy bandwidth {meta['copy_gbps']:.0f} GB/s. Ratio in brackets: dense / path "
             "(FP8 paths: their own time against BF16 dense).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        def c(k):
            v = r.get(f"{k}_ms")
            s = r.get(f"speedup_{k}")
            return "–" if v is None else f"{v:.3f}" + (f" ({s:.2f}×)" if s else "")
        errs = " ".join(f"{k[4:]} {v:.0e}" for k, v in r.items() if k.startswith("err_"))
        hyb = r.get("speedup_hybrid")
        lines.append("| " + " | ".join([r["shape"], str(r["M"]), f"{r['dense_tflops']:.0f}" if r["dense_tflops"] else "–"]
                                       + [c(k) for k in keys] + [f"{hyb:.2f}×" if hyb else "–", errs]) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = prefill_parser("512,2048,8192")
    ap.add_argument("--fp8", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    meta = {**run_meta(), "torch": torch.__version__,
            "cusparselt": getattr(torch.backends.cusparselt, "version", lambda: None)()}
    gen = torch.Generator().manual_seed(0)
    want = a.shapes.split(",")
    rows = []
    for sname, N, K in [s for s in SHAPES if s[0] in want]:
        try:
            rows += cell(sname, N, K, [int(m) for m in a.ms.split(",")], gen, a.min_bytes, a.fp8)
        except Exception as e:  # noqa: BLE001 - one shape failing keeps the others' rows
            print(f"{sname} failed: {type(e).__name__}: {e}", flush=True)
        torch.cuda.empty_cache()
        save_rows(a.out, "sparse_gemm_probe", meta, rows, write_md)


if __name__ == "__main__":
    main()
