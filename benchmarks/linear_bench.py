"""Spense linear benchmark + GPU correctness check (runs on the device machine).

    PYTHONPATH=src python3 benchmarks/linear_bench.py --out $OUT [--check-only] [--dtypes bf16,fp8]

Times, per (shape, M, dense ratio): dense cuBLAS, torch semi-structured (cuSPARSELt, the peer; pure
2:4 so only at dense ratio 0), our cusparselt backend, our mmasp (CUDA mma.sp) and triton decode
kernels, and (M <= 64, opt-in: ``--backends ...,wgsd``) the sparse warpgroup MMA kernel's decode
forms (``spense.runtime.wgsp``: column ``wgsd`` stream-K, bf16 or FP8, ``wgsd_cl`` the K split over clusters,
bf16 only, ``wgsd_xh`` FP8 under ``SPENSE_WGSD_EXP`` bit 2048 on x's f16 operand made before the call, where
``wgsd`` and ``sk`` make it in each call; the engine
takes them from ``SPENSE_WGSD_MIN_M`` tokens, picking one by ``SPENSE_WGSD_SK``); beside ``mmasp``, ``mmasp_xf`` is
the mma.sp kernel on x's fragments made before the call and ``mmasp_xh`` (FP8, M <= 16) on the fragments of x's
f16 operand, as the compiled engine runs them (``SPENSE_MMASP_F16``); all under CUDA graphs with the
weights rotated over several copies (>= 256 MB in all, L2 is 50 MB).  Writes linear_bench.json / .md /
.png under --out.  The FP8 dense baseline is the fastest per shape and M of our W8A16 Triton configs,
``_scaled_mm`` W8A8 both ways, the compiled dequant (M = 1) and, at M <= 64 on sm_90a, the stream-K form
on the weight as dense rows (``sk``); ``fp8_dense_table.json`` holds the fastest per (N, K, M bucket), the
table ``fp8.Fp8Linear`` picks from (``src/spense/runtime/fp8_table.json`` is one such file).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from spense.format import pack, unpack  # noqa: E402
from spense.provenance import current_commit, source_digest  # noqa: E402
from spense.runtime.linear import SpenseLinear  # noqa: E402
from spense.runtime.shapes import bucket as _bucket  # noqa: E402
from spense.runtime import dense as dense_rt  # noqa: E402
from spense.runtime import fp8 as fp8rt  # noqa: E402
from spense.runtime.xops import F16_MAX_M, f16_operand, gathered_fragments  # noqa: E402
from spense.runtime.wgsp import wgsd_exp, wgsd_f16_x, wgsp_forward, wgsp_layer_applies  # noqa: E402
from bench_common import SHAPES, copy_bandwidth, make_weight, rel_err, time_graph  # noqa: E402

# mmasp (row tiles per CTA, warps, stages): stages 0 = the register kernel, > 0 = the bulk-copy kernel
# with that many shared-memory ring slots (sm_90; csrc/spense_mmasp_bulk.cuh)
CFGS = [(1, 4, 0), (1, 8, 0), (2, 4, 0), (2, 8, 0), (1, 16, 0), (1, 4, 4), (1, 4, 8), (1, 8, 8), (2, 4, 4)]
LIMIT = {"bf16": 2 / 1.125, "fp8": 1 / 0.625}


def limit(dt: str, d: float) -> float:
    L = LIMIT[dt]
    return 1.0 / (d + (1 - d) / L)


def check(layer, w, M, backends, gen):
    """Poisoned outputs, fresh random x, each backend vs a float64 reference (of the dequantised
    weights for FP8)."""
    out = {}
    x = torch.randn(M, w.shape[1], generator=gen).to("cuda", torch.bfloat16)
    ref = (x.double() @ w.double().T)
    for b in backends:
        if b in ("mmasp", "triton", "wgsd") and M > 64:
            continue
        y_poison = torch.full((M, w.shape[0]), float("nan"), device="cuda", dtype=torch.bfloat16)
        if b == "mmasp":
            y = layer.forward_mmasp(x, out=y_poison)
        elif b == "triton":
            y = layer.forward_triton(x, out=y_poison)
        elif b == "wgsd":
            y = wgsp_forward(layer._kw(), x, decode=True, stream_k=True)
            if not layer._kw().fp8:  # (FP8: stream-K only)
                yc = wgsp_forward(layer._kw(), x, decode=True, stream_k=False)
                ok = yc is not None and torch.isfinite(yc.float()).all()
                out["wgsd_cl"] = rel_err(yc, ref) if ok else float("inf")
        else:
            y = layer.run_backend(b, x)
        e = rel_err(y, ref) if y is not None and torch.isfinite(y.float()).all() else float("inf")
        out[b] = e
    return out


FP8_EXTRA = [False]  # --fp8-extra
FP8_ONLY: list[str] = []  # --fp8-only


def fp8_kinds(M: int) -> list[str]:
    """The FP8 dense kinds measured at M: fp8.candidates, kept to those naming one of --fp8-only's configs."""
    kinds = fp8rt.candidates(M, extra=FP8_EXTRA[0])
    if not FP8_ONLY:
        return kinds
    return [k for k in kinds if ":" in k and any((k.split(":", 1)[1] + "x").startswith(c + "x") for c in FP8_ONLY)]


fp8_table: dict[str, str] = {}  # "N,K,bucket" -> fastest FP8 dense kind (fp8.load_table format)
# the stream-K variants for timing only (SPENSE_WGSD_EXP bits 128 / 256) serve M <= 16 alone, with wrong sums:
# checked there too (the checks then say FAILED), not past it
TIMING_ONLY = (wgsd_exp() & 384) != 0
CHECK_MS = (1, 7, 16) if TIMING_ONLY else (1, 7, 16, 33, 64)
FP8_TOL = {"w8a16": 1e-2, "w8a16h": 1e-2, "compiled": 1e-2, "nt": 6e-2, "swap": 6e-2,
           "sk": 1e-2}  # W8A8 rounds x to e4m3 too


def check_fp8_dense(q, sname, gen):
    """Every FP8 dense kernel vs the float64 product with the dequantised weight (poisoned nothing:
    the kernels allocate their outputs), M = 1, 7, 16, 33, 64, 2048."""
    wq, sw = q
    wd = wq.double() * sw.double()[:, None]
    out = {}
    kwd = fp8rt.sk_layout(*q)  # the weight as the stream-K form's dense rows (kind sk), or None
    for M in (1, 7, 16, 33, 64, 2048):
        x = torch.randn(M, wq.shape[1], generator=gen).to("cuda", torch.bfloat16)
        ref = x.double() @ wd.T
        for kind in fp8_kinds(M) + (["compiled"] if M == 1 and not FP8_ONLY else []):
            try:
                y = fp8rt.run_kind(kind, x, wq, sw)
            except Exception as ex:  # e.g. a Triton config out of resources: reported, not fatal
                print(f"FP8 KIND FAILED {sname} M={M} {kind}: {str(ex)[:200]}", flush=True)
                out[f"M{M}.{kind}"] = float("nan")
                continue
            e = rel_err(y, ref) if torch.isfinite(y.float()).all() else float("inf")
            out[f"M{M}.{kind}"] = e
            if e > FP8_TOL[kind.split(":")[0]]:
                print(f"FP8 CHECK FAILED {sname} M={M} {kind}: {e:.2e}", flush=True)
        sk = kwd is not None and M <= (16 if TIMING_ONLY else fp8rt.SK_MAX_M)
        y = fp8rt.run_kind("sk", x, None, None, kw=kwd) if sk else None
        if y is not None:  # the stream-K form on the weight as dense rows, as Fp8Linear runs it
            out[f"M{M}.sk"] = e = rel_err(y, ref) if torch.isfinite(y.float()).all() else float("inf")
            if e > FP8_TOL["sk"]:
                print(f"FP8 CHECK FAILED {sname} M={M} sk: {e:.2e}", flush=True)
    return out


def log_cfg(layer, M: int, column: str, cfg, ms: float) -> None:
    """One line per launch config timed (``cfg N=.. K=.. d=.. axis=c fp8=.. M=.. xf RTxWARPS[xSTAGES] us``): the sweep
    behind each cell's best config, which benchmarks/make_mmasp_cfg_table.py reads (the column the engine runs)."""
    kw, lay = layer._kw(), layer.layout
    print(f"cfg N={layer.out_features} K={layer.in_features} d={lay.dense_ratio} axis={lay.axis[0]} "
          f"fp8={int(bool(kw.fp8))} M={M} {column} {'x'.join(str(v) for v in cfg)} {ms * 1e3:.2f} us", flush=True)


def sweep_cfgs(layers, M: int, cfgs, calls, column: str | None = None) -> tuple[float, tuple]:
    """(ms, config): the fastest of ``cfgs``, each set as the layers' launch config at M's bucket and timed on
    ``calls`` (one per layer); each logged (:func:`log_cfg`) under ``column`` where one is given."""
    best = None
    for cfg in cfgs:
        for l in layers:
            l.mmasp_cfg[_bucket(M)] = cfg
        t = time_graph(calls)
        if column is not None:
            log_cfg(layers[0], M, column, cfg, t)
        if best is None or t < best[0]:
            best = (t, cfg)
    return best


def on_fragments(layers, ys, x, xin, cfgs) -> tuple[float, tuple]:
    """(ms, config): the fastest of ``cfgs`` for the mma.sp kernel on ``layers`` reading the fragments of ``xin``
    (x, or its f16 operand) made before the call, as the compiled engine makes them (fused into the op that
    produces x: SpenseLinear.plan)."""
    fs = [gathered_fragments(xin, l._kw().xperm) for l in layers]
    calls = [lambda l=l, y=y, f=f: l.forward_mmasp(x, out=y, xf=f) for l, y, f in zip(layers, ys, fs)]
    return sweep_cfgs(layers, x.shape[0], cfgs, calls, "xh" if xin.dtype == torch.float16 else "xf")


def on_perm(layers, ys, xin, cfgs) -> None:
    """Each of ``cfgs`` logged (:func:`log_cfg`, column ``xp``, or ``xhp`` on x's f16 operand) for the mma.sp kernel on
    ``layers`` reading x_perm of ``xin``, the engine's x operand at M <= 8 (``SpenseLinear.plan``), where it applies."""
    from spense.runtime.xops import x_perm

    M = xin.shape[0]
    if M > 8 or any(l._kw().xperm is not None or l.in_features % 64 for l in layers):
        return
    xp, xh = x_perm(xin), xin.dtype == torch.float16
    calls = [lambda l=l, y=y: l.forward_mmasp(xp, out=y, xperm=True, xh=xh) for l, y in zip(layers, ys)]
    sweep_cfgs(layers, M, [c for c in cfgs if c[0] == 1 and (len(c) < 3 or c[2] == 0)],  # x_perm: RT = 1, stages 0
               calls, "xhp" if xh else "xp")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "out"))
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--shapes", default="")
    ap.add_argument("--ms", default="1,4,16,64,256,2048")
    ap.add_argument("--ratios", default="0,0.25,0.5")
    ap.add_argument("--axes", default="cols,rows")
    ap.add_argument("--dtypes", default="bf16", help="bf16, fp8 or bf16,fp8 (fp8: e4m3 weights, bf16 x)")
    ap.add_argument("--backends", default="dense,peer,cusparselt,mmasp,triton")
    ap.add_argument("--cfgs", default="", help="mmasp (RT,warps[,stages]) list, e.g. 1x4,2x8,1x4x4 (default: CFGS)")
    ap.add_argument("--cols-layout", default="blocks", choices=["blocks", "random"])
    ap.add_argument("--min-bytes", type=float, default=256e6)
    ap.add_argument("--tag", default="")
    ap.add_argument("--fp8-extra", action="store_true", help="also the Triton W8A16 configs that won nowhere "
                    "on the H200 (fp8_dense.EXTRA_CONFIGS)")
    ap.add_argument("--fp8-only", default="", help="measure only these Triton W8A16 configs (with --fp8-extra, "
                    "of its list too), each with its longer forms: e.g. 32x256x2x4 also takes 32x256x2x4x0x0x1")
    ap.add_argument("--fp8-compiled-ms", default="1", help="M values at which torch.compile'd dequant+linear "
                    "is a baseline candidate (compile time; '' = none)")
    a = ap.parse_args()
    a.fp8_compiled_ms = {int(v) for v in a.fp8_compiled_ms.split(",") if v}
    FP8_EXTRA[0] = a.fp8_extra
    FP8_ONLY[:] = [c for c in a.fp8_only.split(",") if c]
    os.makedirs(a.out, exist_ok=True)
    dev = torch.cuda.get_device_name()
    commit = current_commit()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    cmd = " ".join(sys.argv)
    gen = torch.Generator().manual_seed(0)
    shapes = [s for s in SHAPES if not a.shapes or s[0] in a.shapes.split(",")]
    ms = [int(v) for v in a.ms.split(",")]
    ratios = [float(v) for v in a.ratios.split(",")]
    axes = a.axes.split(",")
    dtypes = a.dtypes.split(",")
    backends = a.backends.split(",")
    cfgs = [tuple(int(v) for v in c.split("x")) for c in a.cfgs.split(",")] if a.cfgs else CFGS
    t0 = time.time()
    bw = copy_bandwidth()
    print(f"device {dev}  copy bandwidth {bw:.0f} GB/s", flush=True)
    # the harness's header form, which benchmarks/make_mmasp_cfg_table.py reads above the "cfg" lines
    print(f"# {dev}, {date[:19]}Z, commit {commit}", flush=True)
    rows, checks = [], []
    from torch.sparse import to_sparse_semi_structured, SparseSemiStructuredTensor
    Fp8Linear, quantize_weight = fp8rt.Fp8Linear, fp8rt.quantize_weight
    SparseSemiStructuredTensor._FORCE_CUTLASS = False
    for (sname, N, K) in shapes:
        for dt in dtypes:
            fp8 = dt == "fp8"
            for axis in axes:
                for ratio in ratios:
                    if axis == "rows" and ratio == 0 and "cols" in axes:
                        continue
                    run_cell(a, sname, N, K, dt, fp8, axis, ratio, ms, backends, cfgs, gen, bw, dev, commit,
                             date, cmd, rows, checks, to_sparse_semi_structured, Fp8Linear, quantize_weight)
                    torch.cuda.empty_cache()
            save(a, rows, checks, dev, bw, commit, date, cmd)
    save(a, rows, checks, dev, bw, commit, date, cmd)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


def run_cell(a, sname, N, K, dt, fp8, axis, ratio, ms, backends, cfgs, gen, bw, dev, commit, date, cmd,
             rows, checks, to_sparse_semi_structured, Fp8Linear, quantize_weight):
    w0, lay = make_weight(N, K, axis, ratio, gen, cols_layout=a.cols_layout)
    dense_bytes = N * K * 2
    ncop = max(1, min(8, math.ceil(a.min_bytes / dense_bytes)))
    ws = [w0] + [w0 + 0 for _ in range(ncop - 1)]  # copies (same values: check uses w0)
    ours = [b for b in backends if b in ("mmasp", "triton", "wgsd") + (() if fp8 else ("cusparselt",))]
    f8 = sk = None
    if fp8:  # the FP8 dense baseline: e4m3 weights + scales by spense.format (fp8.quantize_weight)
        f8 = [fp8rt.quantize_weight(w) for w in ws]
        sk = [fp8rt.sk_layout(*q) for q in f8]
        sk = None if None in sk else sk
        ck = check_fp8_dense(f8[0], sname, gen)
        checks.append({"shape": sname, "dtype": "fp8_dense", **ck})
        print(f"check {sname} fp8 dense: " + " ".join(f"{k}={v:.2e}" for k, v in ck.items()), flush=True)
    if not ours:
        layers, L0, kwl = [], None, None
        if a.check_only:
            return
    else:
        layers = [SpenseLinear(pack(w, lay, fp8=fp8), backend="auto", name=sname) for w in ws]
        L0 = layers[0]
        if "wgsd" in ours and not wgsp_layer_applies(L0._kw(), K, decode=True):  # e.g. a column gather
            ours.remove("wgsd")
    wref = unpack(L0.packed, dtype=torch.float32) if (fp8 and L0 is not None) else w0
    try:
        if L0 is None:
            raise StopIteration
        ck = {}
        for Mc in CHECK_MS:
            ck.update({f"M{Mc}.{k}": v for k, v in check(L0, wref, Mc, ours, gen).items()})
        if "cusparselt" in ours:
            ck.update({f"M2048.{k}": v for k, v in check(L0, wref, 2048, ["cusparselt"], gen).items()})
    except StopIteration:
        ck = None
    except Exception as e:
        print("check failed:", repr(e)[:300], flush=True)
        ck = {"error": repr(e)[:300]}
    kwl = L0._kw() if "mmasp" in ours else None
    if ck is not None:
        checks.append({"shape": sname, "dtype": dt, "axis": axis, "dense_ratio": ratio,
                       "x_gather": bool(kwl.gather) if kwl is not None else None, **ck})
        print(f"check {sname} {dt} {axis} d={ratio}: " + " ".join(
            f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in ck.items()), flush=True)
    if a.check_only:
        return
    peer = None
    if "peer" in backends and ratio == 0 and not fp8:
        try:
            peer = [to_sparse_semi_structured(w) for w in ws]
        except Exception as e:
            print("peer unavailable:", e)
    esz = 1 if fp8 else 2
    if L0 is not None:
        sp = L0.packed
        sbytes = sp.values.numel() * esz + sp.meta.numel() + sp.dense.numel() * esz + (N * 4 if fp8 else 0)
    else:
        sbytes = 0
    for M in ms:
        x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
        res, cfg_used = {}, {}
        baseline = "cublas"
        fp8_times = {}
        if fp8:
            kinds = [k for k in fp8_kinds(M) if k != "compiled"] + (
                ["compiled"] if M in a.fp8_compiled_ms and not FP8_ONLY else [])
            xh = f16_operand(x)  # x's f16 operand made beforehand, as fp8.measure times it (the engine fuses it)
            for kind in kinds:
                try:
                    fp8_times[kind] = time_graph([lambda q=q: fp8rt.run_kind(kind, x, q[0], q[1], xh=xh) for q in f8])
                except Exception as e:
                    print(f"fp8 {kind} failed {sname} M={M}: {str(e)[:200]}", flush=True)
            if sk is not None and M <= fp8rt.SK_MAX_M:  # our CUDA weight-only kernel on the dense rows
                fp8_times["sk"] = time_graph([lambda k=k: fp8rt.run_kind("sk", x, None, None, kw=k, xh=xh)
                                              for k in sk])
            # the engine's FP8 dense layer (fp8.Fp8Linear) picks among these by the table written here
            fp8_table[f"{N},{K},{_bucket(M)}"] = baseline = min(fp8_times, key=fp8_times.get)
            res["dense"] = fp8_times[baseline]
            res["dense_bf16"] = time_graph([lambda w=w: F.linear(x, w) for w in ws])
        else:  # the faster of cuBLAS and our streaming kernel per shape and M, as the engine's dense layers run
            bf_times = {}
            for kind in dense_rt.candidates(M):
                try:
                    bf_times[kind] = time_graph([lambda w=w: dense_rt.run_kind(kind, x, w) for w in ws])
                except Exception as e:
                    print(f"dense {kind} failed {sname} M={M}: {str(e)[:200]}", flush=True)
            baseline = min(bf_times, key=bf_times.get)
            res["dense"], res["dense_bf16"] = bf_times[baseline], bf_times["cublas"]
        if peer is not None:
            try:
                res["peer"] = time_graph([lambda p=p: F.linear(x, p) for p in peer])
            except Exception as e:
                print("peer failed", M, e)
        for b in ours:
            if b != "cusparselt" and M > 64:
                continue
            try:
                if b == "mmasp":
                    ys = [torch.empty(M, N, device="cuda", dtype=torch.bfloat16) for _ in layers]
                    best = sweep_cfgs(layers, M, cfgs,
                                      [lambda l=l, y=y: l.forward_mmasp(x, out=y) for l, y in zip(layers, ys)])
                    res[b] = best[0]
                    cfg_used[b] = best[1]
                    # mmasp_xf: x's fragments built before the call, as the compiled engine builds them
                    # (fused into the op producing x: SpenseLinear.plan), best config again
                    res["mmasp_xf"], cfg_used["mmasp_xf"] = on_fragments(layers, ys, x, x, cfgs)
                    on_perm(layers, ys, f16_operand(x) if fp8 and M <= F16_MAX_M else x, cfgs)
                    if fp8 and M <= F16_MAX_M:  # mmasp_xh: the fragments of x's f16 operand (SPENSE_MMASP_F16)
                        res["mmasp_xh"], cfg_used["mmasp_xh"] = on_fragments(  # (the register kernel, RT 1 / 2)
                            layers, ys, x, f16_operand(x), [c for c in cfgs if c[0] <= 2 and (len(c) < 3 or c[2] == 0)])
                    for l in layers:
                        l.mmasp_cfg[_bucket(M)] = best[1]
                elif b == "wgsd":  # stream-K, and wgsd_cl: the K split over clusters
                    res[b] = time_graph([lambda l=l: wgsp_forward(l._kw(), x, decode=True, stream_k=True)
                                         for l in layers])
                    if not fp8:  # (FP8: stream-K only)
                        res["wgsd_cl"] = time_graph([lambda l=l: wgsp_forward(l._kw(), x, decode=True,
                                                                              stream_k=False) for l in layers])
                    elif wgsd_f16_x(layers[0]._kw(), M):  # variant bit 2048: wgsd makes x's f16 operand each
                        xh = f16_operand(x)  # call; wgsd_xh is the kernel alone on it, made beforehand (as sk's)
                        res["wgsd_xh"] = time_graph([lambda l=l: wgsp_forward(l._kw(), xh, decode=True,
                                                                              stream_k=True) for l in layers])
                elif b == "triton":
                    if M > 16 and fp8:
                        continue
                    ys = [torch.empty(M, N, device="cuda", dtype=torch.bfloat16) for _ in layers]
                    res[b] = time_graph([lambda l=l, y=y: l.forward_triton(x, out=y) for l, y in zip(layers, ys)])
                else:
                    res[b] = time_graph([lambda l=l: l.run_backend(b, x) for l in layers])
            except Exception as e:
                print(f"{b} failed {sname} M={M}: {e}", flush=True)
        lim = limit(dt, lay.dense_ratio)
        base_bytes = N * K * (1 if fp8 else 2) + (N * 4 if fp8 else 0) + M * K * 2 + M * N * 2
        for b, t in res.items():
            if b == "dense":
                wb = N * K * (1 if fp8 else 2) + (N * 4 if fp8 else 0)
            elif b in ("dense_bf16", "peer"):
                wb = N * K * 2 if b == "dense_bf16" else sbytes
            else:
                wb = sbytes
            nbytes = wb + M * K * 2 + M * N * 2
            rows.append({
                "shape": sname, "N": N, "K": K, "M": M, "dtype": dt, "dense_ratio": ratio,
                "dense_ratio_actual": lay.dense_ratio, "axis": axis, "backend": b, "ms": t,
                "speedup_vs_dense": res["dense"] / t,
                "speedup_vs_bf16": res["dense_bf16"] / t,  # over cuBLAS BF16
                "limit": lim, "gbps": nbytes / t / 1e6, "copy_gbps": bw, "config": cfg_used.get(b),
                "x_gather": bool(kwl.gather) if (kwl is not None and b == "mmasp") else None,
                "baseline": baseline, "baseline_gbps": base_bytes / res["dense"] / 1e6,
                "fp8_dense_ms": ({k: v for k, v in fp8_times.items()} if b == "dense" and fp8 else None),
                "device": dev, "commit": commit, "date": date, "command": cmd,
            })
        print(f"{sname:12s} {dt} {axis} d={ratio:<5} M={M:<5} " + "  ".join(
            f"{b}={t*1e3:7.1f}us({res['dense']/t:4.2f}x)" for b, t in res.items()) + f"  lim={lim:.2f}"
            + (f"  baseline={baseline} " + " ".join(f"{k}={v*1e3:.1f}" for k, v in fp8_times.items()) if fp8 else ""),
            flush=True)
    del layers, ws, peer, f8


def save(a, rows, checks, dev, bw, commit, date, cmd):
    tag = a.tag
    with open(os.path.join(a.out, f"linear_bench{tag}.json"), "w") as f:
        json.dump(rows, f, indent=0)
    if fp8_table:
        major, minor = torch.cuda.get_device_capability()
        with open(os.path.join(a.out, f"fp8_dense_table{tag}.json"), "w") as f:
            json.dump({"device": dev, "cc": f"{major}.{minor}", "commit": commit, "src_digest": source_digest(),
                       "date": date, "command": cmd, "cells": fp8_table}, f, indent=0)
    with open(os.path.join(a.out, f"linear_bench{tag}_checks.json"), "w") as f:
        json.dump({"device": dev, "copy_gbps": bw, "commit": commit, "src_digest": source_digest(), "date": date,
                   "command": cmd, "checks": checks}, f, indent=0)
    if rows:
        write_md(rows, bw, dev, os.path.join(a.out, f"linear_bench{tag}.md"), commit, date, cmd)
        try:
            plot(rows, os.path.join(a.out, f"linear_bench{tag}.png"), f"{dev} - {date} - {commit}")
        except Exception as e:
            print("plot failed:", e)


def write_md(rows, bw, dev, path, commit=None, date=None, cmd=None):
    order = [s[0] for s in SHAPES]
    keys = sorted({(r["dtype"], r["shape"], r["axis"], r["dense_ratio"], r["M"]) for r in rows},
                  key=lambda k: (k[0], order.index(k[1]), k[2], k[3], k[4]))
    bk = ["dense", "dense_bf16", "peer", "cusparselt", "mmasp", "triton", "wgsd", "wgsd_cl"]
    bk = [b for b in bk if any(r["backend"] == b for r in rows)]
    lines = [f"Device: {dev}; copy bandwidth {bw:.0f} GB/s (read+write). Times in us; (x) = speedup over dense "
             f"of the same dtype (bf16: the faster of cuBLAS F.linear and our streaming Triton kernel, "
             f"spense.runtime.dense, named in `baseline`; fp8: the FP8 dense baseline = fastest of our Triton "
             f"W8A16 kernel configs, _scaled_mm W8A8 nt/swap, compiled dequant+linear and (M <= 64, sm_90a) our "
             f"stream-K CUDA kernel on the weight as dense rows (`sk`), named in `baseline`; "
             f"dense_bf16 = cuBLAS BF16 on the same shape); limit = memory-bound limit vs "
             f"that dense; best = best of our backends (GB/s achieved, x vs BF16 dense).", "",
             f"Date: {date or rows[0].get('date')}; commit: {commit or rows[0].get('commit')}; command: "
             f"`{cmd or rows[0].get('command')}`", "",
             "| dtype | shape | axis | d | M | " + " | ".join(bk) + " | baseline (GB/s, x bf16) | best ours | limit |",
             "|" + "---|" * (len(bk) + 8)]
    for k in keys:
        rs = {r["backend"]: r for r in rows if (r["dtype"], r["shape"], r["axis"], r["dense_ratio"], r["M"]) == k}
        cells = []
        for b in bk:
            r = rs.get(b)
            cells.append(f"{r['ms']*1e3:.1f} ({r['speedup_vs_dense']:.2f}x)" if r else "")
        ours = [rs[b] for b in ("cusparselt", "mmasp", "triton", "wgsd", "wgsd_cl") if b in rs]
        best = max(ours, key=lambda r: r["speedup_vs_dense"]) if ours else None
        bs = (f"{best['backend']} {best['speedup_vs_dense']:.2f}x, {best['gbps']:.0f} GB/s, "
              f"{best['speedup_vs_bf16']:.2f}x bf16") if best else ""
        lim = next(iter(rs.values()))["limit"]
        dn = rs.get("dense")
        base = (f"{dn.get('baseline', '')} {dn.get('baseline_gbps', float('nan')):.0f} GB/s, "
                f"{dn['speedup_vs_bf16']:.2f}x") if dn else ""
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {k[4]} | " + " | ".join(cells)
                     + f" | {base} | {bs} | {lim:.2f} |")
    open(path, "w").write("\n".join(lines) + "\n")


def plot(rows, path, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    order = [s[0] for s in SHAPES]
    panels = sorted({(r["dtype"], r["dense_ratio"]) for r in rows})
    fig, axs = plt.subplots(len(panels), 1, figsize=(16, 4 * len(panels)), squeeze=False)
    for ax, (dt, d) in zip(axs[:, 0], panels):
        sel = [r for r in rows if r["dense_ratio"] == d and r["dtype"] == dt]
        keys = sorted({(r["shape"], r["M"]) for r in sel}, key=lambda k: (order.index(k[0]), k[1]))
        xs = range(len(keys))
        for axis in sorted({r["axis"] for r in sel}):
            for b, mk in (("peer", "x"), ("cusparselt", "o"), ("mmasp", "s"), ("triton", "^"), ("wgsd", "D")):
                ys = []
                for k in keys:
                    r = [r for r in sel if (r["shape"], r["M"]) == k and r["backend"] == b and r["axis"] == axis]
                    ys.append(r[0]["speedup_vs_dense"] if r else float("nan"))
                if any(y == y for y in ys):
                    ax.plot(xs, ys, mk, label=f"{b} ({axis})", fillstyle="full" if axis == "cols" else "none")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(sel[0]["limit"], color="r", ls="--", lw=0.8, label="memory-bound limit")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{k[0]}\nM={k[1]}" for k in keys], rotation=90, fontsize=6)
        ax.set_ylabel(f"speedup vs dense {dt.upper()}")
        ax.set_title(f"{dt}, dense ratio {d}")
        ax.legend(fontsize=7, ncol=4)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
