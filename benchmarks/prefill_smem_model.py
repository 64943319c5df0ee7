"""A shared-memory model of the prefill GEMMs at M = 2048 (docs/runtime.md section 11): the bytes each 64-K step
moves through an SM's shared memory, whose port serves ``SMEM_BPC`` = 128 B a cycle to TMA writes, ``ld.shared`` and
the wgmma operand reads alike, against the cycles of the step's MMAs (``MACS`` = 2048 bf16 multiply-adds a cycle and
SM dense, twice that 2:4 sparse).  A step takes the larger of the two.

    python3 benchmarks/prefill_smem_model.py [--ghz 1.6] [--harness harness.txt --cublas cublas.txt]

prints, for the four issue-9 shapes at 25 % dense columns, the step's bytes and cycles and the times the model gives
for ``spense_wgsp_ws_kernel`` (CTAs of 16 row tiles = 256 rows and 128 tokens, in whole waves, no tail split: the
harness's form; and on CTAs of 8 row tiles and 256 tokens, ``SPENSE_WGSP_NT=256``) and for cuBLAS (256 x 128 tiles on
a persistent grid), next to the times a ``wgsp_check`` run
measured (``--harness``: its ``N=.. wgsp_ws X us`` lines, the mean where a shape ran more than once; ``--cublas``: the
``N K cublas F.linear us T`` lines of results wgsd_2026-12-06 cv).

A second count, of the bytes the SMs receive from L2 (:func:`ingress_bytes`), follows, with the rates the measured
times give it: the 256-token form ran 0.79-0.89x of the plain form (results wgsd_2026-12-06 da), where it moves fewer
shared-memory bytes per MMA but receives 1.14x the bytes.

Neither count is a bound of our kernel (results wgsd_2026-12-06 de, docs/runtime.md section 11): cuSPARSELt's own
2:4 kernel on 8B.gate_up (128 x 256 tiles, clusters of four) moves as many shared-memory bytes per MMA as ours and
receives more bytes into its SMs (11.6 TB/s by this count), yet ran 1.18x faster than our plain form at 0 % dense in
one launch.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics

SMEM_BPC = 128  # bytes a cycle through an SM's shared memory
TILE_B = {True: 1152, False: 2048}  # bytes of one 16-row tile's 64-K step as stored: 2:4 (values, metadata), dense
MACS = 2048  # dense bf16 multiply-adds a cycle and SM (H100: 989 TFLOPS at 1.83 GHz, 132 SMs)
SHAPES = {"8B.gate_up": (24576, 4096), "8B.down": (4096, 12288), "32B.gate_up": (51200, 5120),
          "32B.down": (5120, 25600)}


def spense_step(sparse: bool, rows: int = 256, tokens: int = 128) -> dict:
    """One 64-K step of a CTA of ``rows`` rows and ``tokens`` tokens: x read by the wgmmas once per 64-row block
    (``rows / 64 * tokens * 64 * 2`` B), the x tile and the A box written by TMA, the A box read by ``ld.shared``
    (sparse: 1152 B per 16-row tile, values and metadata; dense: 2048 B); MMA cycles ``rows * tokens * 64 / MACS``,
    halved for 2:4."""
    x_tile = tokens * 64 * 2
    a_box = rows // 16 * TILE_B[sparse]
    b = {"x_read": rows // 64 * x_tile, "x_write": x_tile, "a_write": a_box, "a_read": a_box}
    b["bytes"] = sum(b.values())
    b["smem_cycles"] = b["bytes"] / SMEM_BPC
    b["mma_cycles"] = rows * tokens * 64 / MACS / (2 if sparse else 1)
    return b


def cublas_step(rows: int = 256, tokens: int = 128) -> dict:
    """One 64-K step of cuBLAS's ``rows`` x ``tokens`` tile: both operands read by the wgmmas from shared memory
    (B once per 64-row block), both written by TMA."""
    b = {"b_read": rows // 64 * tokens * 128, "a_read": rows * 128, "write": (rows + tokens) * 128}
    b["bytes"] = sum(b.values())
    b["smem_cycles"] = b["bytes"] / SMEM_BPC
    b["mma_cycles"] = rows * tokens * 64 / MACS
    return b


def step_cycles(b: dict) -> float:
    return max(b["smem_cycles"], b["mma_cycles"])


def predict(N: int, K: int, M: int = 2048, dense: float = 0.25, ghz: float = 1.6, sms: int = 132, rows: int = 256,
            tokens: int = 128) -> dict:
    """µs the model gives: ``ours`` (whole waves of CTAs of ``rows`` rows x ``tokens`` tokens), ``cublas`` (its
    256 x 128 tiles spread evenly over the SMs), and ``ideal`` = cuBLAS's time over ours with no wave quantization."""
    steps = K // 64
    nd = int(steps * dense + 0.5)
    per_cta = (steps - nd) * step_cycles(spense_step(True, rows, tokens)) + nd * step_cycles(
        spense_step(False, rows, tokens))
    ctas = math.ceil(M / tokens) * (N // rows)
    ours = math.ceil(ctas / sms) * per_cta / (ghz * 1e3)
    cub_tiles = math.ceil(M / 128) * (N // 256)
    cublas = cub_tiles / sms * steps * step_cycles(cublas_step()) / (ghz * 1e3)
    even = ctas / sms * per_cta / (ghz * 1e3)  # ours with the CTAs spread evenly, as cuBLAS's
    return {"ours": ours, "cublas": cublas, "ratio": cublas / ours, "ideal": cublas / even}


def ingress_bytes(N: int, K: int, M: int = 2048, dense: float = 0.25, rows: int = 256, tokens: int = 128,
                  sparse: bool = True) -> int:
    """Bytes the SMs receive from L2 in one GEMM on CTAs of ``rows`` x ``tokens`` (TMA multicast cuts L2's reads, not
    these: every CTA still receives its own copy of its weight boxes and x tiles), plus the output they write:
    ``W * ceil(M / tokens) + X * N / rows + Y``, with W the weights as stored (``sparse``: 1152 B per 16 x 64 sparse
    tile, 2048 B per dense one, ``dense`` of the 64-K steps dense; else bf16), X = M K 2 and Y = M N 2."""
    steps = K // 64
    nd = int(steps * dense + 0.5) if sparse else steps
    w = N // 16 * ((steps - nd) * TILE_B[True] + nd * TILE_B[False])
    return w * math.ceil(M / tokens) + M * K * 2 * (N // rows) + M * N * 2


def measured(harness: str | None, cublas: str | None) -> dict:
    """``{(N, K): {"ours": µs, "nt256": µs, "cublas": µs}}`` at M = 2048 from a wgsp_check output (its plain and
    256-token forms) and a cuBLAS timing file (means)."""
    got: dict = {}
    for path, key, pat in ((harness, "ours", r"^N=(\d+) K=(\d+) \S+ \S+ M=2048 \|.*\| wgsp_ws ([\d.]+) us"),
                           (harness, "nt256", r"^nt256 N=(\d+) K=(\d+) \S+ \S+ M=2048 \| wgsp_ws256 ([\d.]+) us"),
                           (cublas, "cublas", r"^(\d+) (\d+) cublas F\.linear us ([\d.]+)")):
        for line in open(path) if path else ():
            m = re.match(pat, line)
            if m:
                got.setdefault((int(m[1]), int(m[2])), {}).setdefault(key, []).append(float(m[3]))
    return {k: {kk: statistics.mean(v) for kk, v in d.items()} for k, d in got.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ghz", type=float, default=1.6, help="the SM clock during the timings (the model's one free "
                    "parameter; not logged in results cv: v63 logged 1.43-1.59 GHz under a sustained GEMM at the "
                    "power cap)")
    ap.add_argument("--harness")
    ap.add_argument("--cublas")
    a = ap.parse_args(argv)
    for name, b in (("sparse step", spense_step(True)), ("dense step", spense_step(False)),
                    ("sparse step, 128 rows x 256 tokens", spense_step(True, 128, 256)),
                    ("dense step, 128 rows x 256 tokens", spense_step(False, 128, 256)),
                    ("cuBLAS step", cublas_step())):
        print(f"{name}: {b['bytes']} B, {b['smem_cycles']:.0f} cycles of shared memory, {b['mma_cycles']:.0f} of MMA")
    meas = measured(a.harness, a.cublas)
    print("\n| shape | model cuBLAS µs | model ours µs | model ratio | no-wave ratio | measured cuBLAS | measured "
          "ours | 256-token CTAs: model µs | ratio | no-wave ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (N, K) in SHAPES.items():
        p, w, m = predict(N, K, ghz=a.ghz), predict(N, K, ghz=a.ghz, rows=128, tokens=256), meas.get((N, K), {})
        mc, mo = (f"{m[k]:.0f}" if k in m else "–" for k in ("cublas", "ours"))
        print(f"| {name} | {p['cublas']:.0f} | {p['ours']:.0f} | {p['ratio']:.3f}× | {p['ideal']:.3f}× | {mc} | {mo} "
              f"| {w['ours']:.0f} | {w['ratio']:.3f}× | {w['ideal']:.3f}× |")
    print("\n| shape | GB into the SMs: plain / 256-token / cuBLAS | 256-token over plain | measured µs and TB/s into "
          "the SMs: plain | 256-token | cuBLAS |")
    print("|---|---|---|---|---|---|")
    for name, (N, K) in SHAPES.items():
        b = {"ours": ingress_bytes(N, K), "nt256": ingress_bytes(N, K, rows=128, tokens=256),
             "cublas": ingress_bytes(N, K, sparse=False)}
        m = meas.get((N, K), {})
        rates = [f"{m[k]:.0f} µs, {b[k] / m[k] / 1e6:.2f}" if k in m else "–" for k in ("ours", "nt256", "cublas")]
        print(f"| {name} | {b['ours'] / 1e9:.2f} / {b['nt256'] / 1e9:.2f} / {b['cublas'] / 1e9:.2f} | "
              f"{b['nt256'] / b['ours']:.3f}× | " + " | ".join(rates) + " |")


if __name__ == "__main__":
    main()
