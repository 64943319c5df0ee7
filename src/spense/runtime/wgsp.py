"""Prefill through the Spense layer's own decode layout on Hopper's sparse warpgroup MMA.

    y = x W^T,   W = its 2:4 region (wgmma.mma_async.sp) + its dense region (wgmma.mma_async)

read from :class:`~spense.runtime.mmasp.KernelWeights` as the decode kernel stores it, so prefill keeps
no second copy of the weights (csrc/spense_wgsp_ws.cuh; docs/runtime.md section 11).  It takes every
M above the decode kernels' range: ``SPENSE_WGSP_MIN_M`` (the smallest M that takes it; default 65;
0: never).  Measured per layer on the Qwen3 shapes (benchmarks/results/prefill_2026-12-01/wgsp_5b441ab)
it runs 1.1-2.2x faster than the unpack path it replaces at M = 512-8192, and 0.96-1.10x of cuBLAS on
the dense weight at M = 2048.
Where it does not apply (another GPU than sm_90, FP8 weights, a layout with a column gather, row tiles
not in eights, K not a multiple of 64) :func:`wgsp_forward` returns None and the caller unpacks as
before.  FP8 (e4m3) weights take the stream-K decode form only (below).

Two more forms: ``SPENSE_WGSP_CLUSTER=1`` (off by default) runs prefill in clusters of two CTAs on
neighbouring token tiles, each loading half of every weight box and multicasting it to both (measured:
0.94-1.0x of the plain form, benchmarks/results/wgsd_2026-12-01); ``SPENSE_WGSP_PERSIST=1`` (off by
default) runs it persistent (:func:`wgsp_persist`, measured slower), ``SPENSE_WGSP_TAIL`` (on by default) splits
its last wave (:func:`wgsp_tail`), ``SPENSE_WGSP_NT=256`` (off by default, measured slower) runs it on CTAs of
256 tokens (:func:`wgsp_nt`); ``SPENSE_WGSD_MIN_M=m`` (1..64,
default 17) sends compacted layers at M = m..64 through a decode form (up to 64 tokens and 8 row tiles
per work block, csrc/spense_wgsd.cuh) instead of the mma.sp decode kernel, whose M = 32-64 reloads x
per MMA; layers of at least ``LARGE_NK`` weights from ``SPENSE_WGSD_MIN_M_LARGE`` tokens (default 9).
The decode form is stream-K (``SPENSE_WGSD_SK=1``: CTAs each streaming an equal share of the layer's weight
bytes, a whole number per row block or whole blocks each where the SMs allow (:func:`wgsd_sk_ctas`), split
blocks finished by the last CTA to arrive) or the K split over clusters
(``SPENSE_WGSD_SK=0``); by default stream-K on long rows, clusters on short ones (:func:`wgsd_stream_k`).
Stream-K keeps one fp32 workspace per device (:func:`sk_workspace`): layers on one device must not run it
on two streams at once.  Stream-K also serves compacted FP8 layers (e4m3 weights widened to bf16 in
registers, the per-row scales in the epilogue), on the same thresholds.
"""

from __future__ import annotations

import functools

import torch

from spense.errors import DeviceError
from spense.runtime import mmasp
from spense.runtime.shapes import device_index, pad_to
from spense.runtime.xops import _env_int, f16_operand, read_once

WGSD_MAX_M = 64  # the decode form: one CTA holds 64 tokens
_EMPTY_F = torch.empty(0, dtype=torch.float32)  # the workspace arguments of the forms that take none
_EMPTY_I = torch.empty(0, dtype=torch.int32)
_EMPTY_L = torch.empty(0, dtype=torch.int64)  # no timeline of the stream-K form (spense_wgsp's trace)


@read_once
def wgsp_min_m() -> int:
    """Smallest M that :meth:`SpenseLinear.forward_dense` sends through :func:`wgsp_forward`:
    ``SPENSE_WGSP_MIN_M`` (read once; default 65, just above the decode kernels' M <= 64; 0 = never)."""
    return _env_int("SPENSE_WGSP_MIN_M", 65, 0)


@read_once
def wgsp_cluster() -> bool:
    """Whether prefill runs in clusters of two CTAs that multicast each weight load
    (``SPENSE_WGSP_CLUSTER``, 0 or 1; default 0)."""
    return _env_int("SPENSE_WGSP_CLUSTER", 0, 0, 1) == 1


@read_once
def wgsp_persist() -> int:
    """Whether prefill runs persistent (``SPENSE_WGSP_PERSIST``, read once; default 0): 1 a grid of at most one
    CTA per SM that walks the tiles, loading a tile's first K steps while storing the one before, on the plain
    form's CTAs (16 row tiles where the grid is large); 2 the same on CTAs of 8 row tiles.  The same bits, but
    slower on the H100 at M = 512 / 2048 (benchmarks/results/wgsd_2026-12-06, cp, cs and ct): 1 at 0.88-1.00x of
    the plain form (ptxas serializes its wgmmas for want of registers, C7512, once the stores sit in the tile loop),
    2 at 0.72-1.00x.  Ignored in clusters of two (:func:`wgsp_cluster`)."""
    return _env_int("SPENSE_WGSP_PERSIST", 0, 0, 2)


@read_once
def wgsp_tail() -> bool:
    """Whether prefill splits a layer's last wave (``SPENSE_WGSP_TAIL``, 0 or 1, read once; default 1): where a
    layer of 2:4 rows only fills whole waves of the SMs with CTAs of 16 row tiles but for a last, part-filled one,
    its last row blocks go to a second launch of CTAs of 8 row tiles, which fill that wave twice as densely
    (csrc/spense_wgsp_ws_launch.cuh ``ws_tail_rows``; 32B.down at M = 2048: 2.42 waves of 132 SMs become 1.94 + one
    of the smaller CTAs).  The same sums in the same order.  On the H100 (benchmarks/results/wgsd_2026-12-06, cs
    and ct) it took 32B.down at M = 2048 from 0.709-0.712 to 0.628-0.634 ms (1.17-1.18x over cuBLAS instead of
    1.04-1.05x), 32B.gate_up 1.04-1.06x faster, 32B.o (2048) 1.08x and 32B.qkv (512) 1.16x; where it does not
    split, the same kernel.  Below :func:`wgsp_cluster` and :func:`wgsp_persist`."""
    return _env_int("SPENSE_WGSP_TAIL", 1, 0, 1) == 1


@read_once
def wgsp_nt() -> int:
    """Tokens per CTA of the prefill form (``SPENSE_WGSP_NT``, 128 or 256, read once; default 128).  256: CTAs of 8 row
    tiles and 256 tokens on m64n256 wgmmas, each step's A box serving twice the tokens, so fewer shared-memory bytes per
    MMA, which the model took for the bound of the 128-token form (benchmarks/prefill_smem_model.py: a sparse step 912
    cycles of shared memory for 512 of MMA against 928, a dense step 1,024 for 1,024 against 1,152; 1.23x over cuBLAS
    before waves against 1.17x).  The same sums in the same order.  Measured (H100, wgsd_2026-12-06 da): 0.79-0.89x of
    the 128-token form at M = 2048 on the four issue-9 shapes, so something other than those bytes bounds it: off.
    Above :func:`wgsp_persist` and :func:`wgsp_tail` (neither applies to it), below :func:`wgsp_cluster`."""
    n = _env_int("SPENSE_WGSP_NT", 128, 128, 256)
    if n not in (128, 256):
        raise DeviceError(f"SPENSE_WGSP_NT must be 128 or 256, got {n}")
    return n


@read_once
def wgsd_min_m() -> int:
    """Smallest M that a compacted layer sends through the decode form (:func:`wgsp_forward` with
    ``decode=True``) instead of the mma.sp kernel: ``SPENSE_WGSD_MIN_M`` (read once; 1..64; 0 = never;
    default 17: per layer the decode form beat the mma.sp kernel with x's fragments at M = 32 and 64 on all
    six Qwen3 shapes, 1.1-1.5x, and lost at M = 16 on 8B.o and 8B.down; end to end on 8B at B = 32 it took
    the step to 1.03x of dense, from 0.86x; benchmarks/results/wgsd_2026-12-01)."""
    return _env_int("SPENSE_WGSD_MIN_M", 17, 0, WGSD_MAX_M)


# a layer of at least this many weights (N K) takes the decode form from wgsd_min_m_large(), bf16 and FP8: from
# 8B.gate_up (1.0e8) on.  bf16: its stream-K ran 1.21-1.23x of cuBLAS at M = 12-16 against the mma.sp kernel's
# 1.13-1.17x (benchmarks/results/wgsd_2026-12-01, x; M = 9-16 in ab).  FP8 (was 1.2e8, where the mma.sp kernel was
# the faster on 8B.gate_up at M = 12-16): since the stream-K grid gives whole shares, on x's f16 operand 27.1 us at
# M = 12 and 16 against the mma.sp kernel's 29.9 and 31.5 (benchmarks/results/wgsd_2026-12-04, d)
LARGE_NK = 100_000_000


@read_once
def wgsd_min_m_large() -> int:
    """Smallest M that a compacted layer of at least ``LARGE_NK`` weights (32B.gate_up and 32B.down among
    the Qwen3 shapes) sends through the decode form: ``SPENSE_WGSD_MIN_M_LARGE`` (read once; 1..64; 0 = as
    :func:`wgsd_min_m`; default 9).  Measured per layer at M = 12 and 16 (benchmarks/results/
    wgsd_2026-12-01, k and m): on those two the decode form (stream-K) ran 1.26-1.45x of cuBLAS against the
    mma.sp kernel's 0.89-1.24x; on 8B.gate_up they tie, and on the smaller layers the mma.sp kernel stays the
    faster below M = 17."""
    return _env_int("SPENSE_WGSD_MIN_M_LARGE", 9, 0, WGSD_MAX_M)


def wgsd_min_m_for(n_out: int, in_features: int) -> int:
    """Smallest M from which a compacted layer of ``n_out`` x ``in_features`` weights takes the decode
    form (0: never): :func:`wgsd_min_m`, or :func:`wgsd_min_m_large` below it for a layer of at least
    ``LARGE_NK`` weights (bf16 or FP8)."""
    m, m_large = wgsd_min_m(), wgsd_min_m_large()
    if m == 0 or m_large == 0 or n_out * in_features < LARGE_NK:
        return m
    return min(m, m_large)


SK_MIN_K = 8192  # SPENSE_WGSD_SK=2: stream-K from this K (in_features) on, or from wgsd_sk_min_nk() weights
SK_MIN_NK = 1 << 26  # 8B.gate_up (1.0e8 weights) on, 32B.qkv (5.2e7) and the smaller below


@read_once
def wgsd_sk_min_nk() -> int:
    """``SPENSE_WGSD_SK=2``'s bound on a layer's weights (N K) from which it runs stream-K whatever its K:
    ``SPENSE_WGSD_SK_MIN_NK`` (read once; >= 1; default ``SK_MIN_NK``)."""
    return _env_int("SPENSE_WGSD_SK_MIN_NK", SK_MIN_NK, 1)


@read_once
def wgsd_stream_k() -> int:
    """How the decode form spreads a layer over the SMs (``SPENSE_WGSD_SK``): 0 K split over clusters, 1
    stream-K, 2 (default) stream-K for K >= ``SK_MIN_K`` or N K >= ``SK_MIN_NK`` or M <= 16, clusters
    otherwise.  Measured per layer at M = 1-64 (benchmarks/results/wgsd_2026-12-01, c_960dd9f and d_35ffbb7):
    stream-K is the faster on the long rows and the largest layer (8B.down, 32B.down, 32B.gate_up), clusters
    on the short ones (8B.qkv, o, gate_up), where stream-K's split blocks cost more than they spread; at
    M = 12-16 stream-K on 8B.gate_up too (41.5-41.9 against 43.5-43.6 us, results x).  Since the grid gives whole
    shares (:func:`wgsd_sk_ctas`) stream-K also wins on 8B.gate_up at M = 32 (41.1 against 44.1 us, benchmarks/
    results/wgsd_2026-12-04, c), so ``SK_MIN_NK`` is 2^26 (was 2^27); 8B.qkv stays on clusters (17.2 against
    14.9 us)."""
    return _env_int("SPENSE_WGSD_SK", 2, 0, 2)


@read_once
def wgsd_cl_pdl() -> bool:
    """Whether the cluster decode form (K split over clusters: :func:`wgsd_stream_k`'s short rows, bf16 8B.qkv
    and 8B.o at M = 17-32) is launched dependent, as :func:`wgsd_exp`'s bit 32768 launches the stream-K form
    (``SPENSE_WGSD_CL_PDL``, read once: 0 or 1, default): its producer waits for the kernel before ahead of its
    first x load, so that the CTAs' entry overlaps that kernel's end.  On since results q (wgsd_2026-12-04): the
    BF16 8B step at B = 32 took 5.166 ms against 5.245 plainly in one run (1.5 % less; the stream-K form's own
    dependent launch took 0.9 % off it in o)."""
    return bool(_env_int("SPENSE_WGSD_CL_PDL", 1, 0, 1))


@read_once
def wgsd_exp() -> int:
    """Variants of the stream-K decode form written from its timeline (docs/runtime.md section 13;
    ``SPENSE_WGSD_EXP``, bits, default 104449): 1 a split block's epilogue in three round trips to L2 (all parts
    loaded at once), 2 the first ring's weight boxes issued before anything else is read and the next kernel
    let launch once the last load is issued, 4 launched dependent (with 2 only: those boxes load while the
    kernel before finishes).  Each gives the bits of variant 0.  Measured (benchmarks/results/
    wgsd_2026-12-01, h and l): 1 took 1.5-3.5 us off a launch at M = 16-32; 2 alone cost ~1.4 us; all three ran
    fastest back to back (8B.down at M = 32: 25.5 us against 1's 28.2) but not in the engine, where the
    kernel before is a short Triton one: the 8B step at B = 32 took 5.749 ms with 1 and 5.797 with 7.
    8 (with 1): 128 registers a thread at launch instead of 168, so that a CTA of another kernel can share
    the SM and a dependent launch starts beside the kernel before it; 12 layers at B = 32 (results u): 2.170
    ms with 1, 2.189 with 7, 2.177 with 15.  16 (with 1): tiles of 64 tokens at every M, as measured up to
    c159e29; without it variant 1 takes tiles of 16 or 32 tokens where M fits (m64n16 / m64n32 wgmmas, a
    smaller ring slot: more slots, more weight bytes in flight; csrc/spense_wgsd.cuh wsd_nt, wsd_stages).
    32 (with 1): two steps' wgmmas left in flight behind each step's commit instead of one.  64 (with 1):
    four accumulator chains instead of one (each step's wgmmas on sets of their own, added in order before
    the epilogue; results aa: 2-5 % faster in e4m3 on tiles of 16 tokens, which take it by default, no
    change in bf16, 1-2 % slower in e4m3 on tiles of 32 and 64).  For timing only, at M <= 16, with wrong
    sums: 129, the consumers free each slot once its bytes are in, with no MMA (y = 0: the stream's own rate);
    257, e4m3 bytes given to the wgmmas as they are, not widened (bf16 layers: variant 1).  1024 (with 2 and 1,
    bf16, tiles of 64: 1027, 1031 launched dependent): only the first two slots' weight boxes go out early.
    512 (with 1, e4m3 at M <= 16: 513): ring slots of two K steps each (half the slots, waits and arrivals per
    byte, 1 KB runs of each row tile's values), with four accumulator chains; the default there since results
    ad (4-6 % faster on the 32B gate_up / down shapes, 1-3 % on the 8B ones): 1 takes it too, 65 keeps slots of
    one step.  2048 (with 1 or 513, e4m3 where that pair form runs: :func:`wgsd_f16_x`): x given in f16 (times
    2^-8, :func:`~spense.runtime.xops.f16_operand`) and each e4m3 pair widened to f16 by one cvt instead of
    five instructions to bf16, the wgmmas in f16; the default since results ah (2049: 3-10 % faster than 1 on the four 8B / 32B
    gate_up / down shapes at M = 1 and 16, kernel alone on an operand made beforehand).  The bit is the
    extension's to clear where x comes in bf16 (bf16 weights, M past :func:`wgsd_f16_max_m`): there 2049 runs
    as 1; on tiles of 32 tokens it runs as kernel 2625 (slots of two K steps, four chains).  4096 (with 2049,
    or with 1 in bf16 on one chain): a split block's count by one acq_rel atomic in place of the fence, atomic,
    fence of bit 1 (kernels 6721, 4097); the default since results g (e4m3 at M = 16 / 32, span of one launch:
    8B.o 7.75 / 9.5 -> 7.0 / 9.25 us, qkv and down 0.25-0.5 us less; the 8B FP8 step at B = 32 4.628 -> 4.561
    ms in one run; bf16 unchanged).  8192 (with 6145, or 4097 in bf16): where the grid gives every row block
    2-8 CTAs of its own (whole shares; :func:`wgsd_variant` keeps the bit up to :func:`wgsd_cluster_max_k`) or
    two CTAs to three blocks (split -2) and the device holds all those clusters at once, the CTAs that share a
    block are launched as one cluster and its parts added through distributed shared memory instead of the
    workspace, the same sums in the same order (kernels 14913, 12289; elsewhere the kernels without it).
    Measured (results i-l): a launch's span 0.75-1.0 us shorter with two CTAs a block (8B.qkv), 2 us on
    8B.gate_up under -2 at M = 32 (e4m3); the 8B step at B = 32 no shorter in four A/Bs (BF16, FP8), so off.
    16384 (the first ring's weight boxes issued at the CTA's entry, before the column tables the x loads need are
    read; results m: the fill 1.0-2.75 us longer on the four 8B shapes) was removed: no kernel takes it.  32768
    (with 6145, or 4097 in bf16: 38913 asks for both; not with 8192): launched dependent (programmatic stream
    serialization), the producer waiting for the kernel before ahead of its first x load, so that each CTA's entry
    (tensor maps, barriers, column tables) overlaps that kernel's end where it triggers its dependents early
    (Inductor's Triton kernels under ``triton.enable_pdl``); no early trigger of its own (kernels 39489, 36865).
    The default since results o (the 8B step at B = 32: FP8 4.531 -> 4.408 ms, BF16 5.283 -> 5.238, each against
    6145 in one run).  65536 (with 2049 on tiles of 32 tokens, M = 17-32: kernels 105025, 80449, 72257, 68161, the
    four there with it): each ring slot's MMAs waited for before the next slot's A is read, so that two A register
    sets are live across the wgmmas instead of four.  Without it ptxas serializes the wgmmas of every kernel of that
    form for want of registers (C7512; with one or two accumulator chains instead of four it spills).  Each slot is
    freed once its MMAs are done, one slot sooner.  The same MMAs in the same order, so the same bits.  The default
    since results cg-ci (wgsd_2026-12-06, H100): per layer at M = 24 / 32 in e4m3 over 38913, 8B.qkv 1.02-1.08x ->
    1.05-1.13x of FP8 dense, o 0.93-0.95x -> 0.98-1.00x, gate_up 1.13-1.14x -> 1.17-1.18x, down 1.15-1.22x ->
    1.19-1.22x; the 8B FP8 step at B = 32 5.185 / 5.183 -> 5.078 / 5.059 ms in two runs (1.112x / 1.115x of FP8
    dense, which takes the bit too); elsewhere the bit is not read (bf16, tiles of 16 and 64)."""
    return _env_int("SPENSE_WGSD_EXP", 104449, 0, 131071)


@read_once
def wgsd_cluster_max_k() -> int:
    """The most CTAs a row block may have for variant bit 8192's clusters (``SPENSE_WGSD_CLUSTER_MAX_K``, read
    once, 2-8; default 2): on grids of more CTAs per block the kernel without the bit runs.  Measured
    (benchmarks/results/wgsd_2026-12-04, i; one launch's span, e4m3 / bf16 at M = 1-32): two CTAs a block
    (8B.qkv) 0.75-1.0 us shorter; three (32B.o) and four (8B.o, 8B.down) no shorter, up to 0.5 us longer."""
    return _env_int("SPENSE_WGSD_CLUSTER_MAX_K", 2, 2, 8)


def wgsd_variant(kw: mmasp.KernelWeights, grid: int) -> int:
    """The stream-K variant bits (:func:`wgsd_exp`) for the weights ``kw`` on ``grid`` CTAs (as
    :func:`wgsd_sk_ctas` gives them; 0 the extension's own): bit 8192 kept only where the grid gives each row
    block 2 <= k <= :func:`wgsd_cluster_max_k` CTAs of its own, or two CTAs to three blocks (split -2: clusters
    of two, the middle block shared); the extension checks the rest of its rule (wsd_cluster_k)."""
    e = wgsd_exp()
    blocks = (kw.rows_sparse + kw.rows_dense) // 128
    own = blocks > 0 and grid % blocks == 0 and 2 <= grid // blocks <= wgsd_cluster_max_k()
    if e & 8192 and not (own or (grid > 0 and 3 * grid == 2 * blocks)):
        e &= ~8192
    return e


@read_once
def wgsd_f16_max_m() -> int:
    """The most tokens at which the stream-K form takes x in f16 for e4m3 weights (``SPENSE_WGSD_F16_MAX_M``,
    read once: 32, default, also its tiles of 32 tokens (kernel 2625 there: slots of two K steps, four
    accumulator chains, csrc/spense_wgsd_launch.cuh), or 16, its tiles of 16 only, as before).  Measured
    (benchmarks/results/wgsd_2026-12-03, s and t): per layer at M = 32 5-12 % less time on the four 8B shapes,
    the 8B FP8 step at B = 32 4.964 against 5.178 ms."""
    m = _env_int("SPENSE_WGSD_F16_MAX_M", 32, 16, 32)
    if m not in (16, 32):
        raise DeviceError(f"SPENSE_WGSD_F16_MAX_M must be 16 or 32, got {m}")
    return m


def wgsd_f16_x(kw: mmasp.KernelWeights, m: int) -> bool:
    """Whether the stream-K form takes x in f16 for the e4m3 weights ``kw`` at ``m`` tokens: variant bit 2048
    (:func:`wgsd_exp`) where its pair form runs (tiles of 16 tokens, and of 32 up to :func:`wgsd_f16_max_m`;
    slots of two K steps: variant 1 or 513 bits, csrc/spense_wgsd_launch.cuh)."""
    e = wgsd_exp()
    return (kw.fp8 and (e & 2048) != 0 and m <= wgsd_f16_max_m() and (e & 16) == 0 and (e & 33) == 1
            and ((e & 512) != 0 or (e & 64) == 0))


@read_once
def wgsd_sk_split() -> int:
    """How many CTAs the stream-K form launches (``SPENSE_WGSD_SK_SPLIT``, read once): -3, default, -2 for
    e4m3 weights and -1 for bf16; -1 whole shares (:func:`wgsd_sk_ctas`); -2 the same, but three blocks to two
    CTAs where -1 gives a CTA two whole blocks; 0 one CTA per SM, as before; k >= 1 k CTAs per row block of 128
    rows, at most one per SM and down to 16 units a CTA (the default's bound: ``SK_CTA_UNITS``).  Measured
    (benchmarks/results/wgsd_2026-12-04, k and l; 8B.gate_up, the one Qwen3 shape -2 changes: 96 -> 128 CTAs): the
    8B FP8 step at B = 32 0.7 % shorter in two runs (4.584 -> 4.551, 4.532 -> 4.501 ms with bit 8192's
    clusters); in bf16 the step 1.6 % longer (5.260 -> 5.346), one launch 0.5-1.75 us longer."""
    return _env_int("SPENSE_WGSD_SK_SPLIT", -3, -3, 64)


def sk_block_units(kw: mmasp.KernelWeights) -> tuple[int, int]:
    """The stream-K form's work units (csrc/spense_wgsd_parts.cuh ``SkGeo``) of one 128-row block of the weights
    ``kw`` with sparse rows and of one with dense rows: a sparse step counts 9 (e4m3: 5), a dense step 16 (e4m3:
    8), about its bytes."""
    us, ud = (5, 8) if kw.fp8 else (9, 16)
    return us * kw.Ss + ud * kw.SdA, ud * kw.SdB


def sk_units(kw: mmasp.KernelWeights) -> int:
    """The stream-K form's work units of the weights ``kw`` (``SkGeo::T``)."""
    cs, cd = sk_block_units(kw)
    return (kw.rows_sparse // 128) * cs + (kw.rows_dense // 128) * cd


SK_CTA_UNITS = 64  # the default grid's least work units a CTA (wgsd_sk_ctas)


def wgsd_sk_ctas(kw: mmasp.KernelWeights, n_sm: int, split: int | None = None) -> int:
    """The stream-K form's CTAs for the weights ``kw`` on ``n_sm`` SMs (0: one per SM, the extension's own rule)
    under ``split`` (as :func:`wgsd_sk_split` reads it, which None asks).  Under -1 whole shares: with B
    row blocks and at most G = min(n_sm, units / ``SK_CTA_UNITS``) CTAs, floor(G / B) CTAs per block where
    B <= G (each CTA's part inside one block: 8B.o 128, 8B.qkv 96, 8B.down 128 on 132 SMs), two whole
    blocks per CTA where B <= 2 G (8B.gate_up 96; under -2 three blocks to two CTAs where B / 3 is whole and
    2 B / 3 <= G: 8B.gate_up 128), else one CTA per SM; one per SM too where the blocks differ
    in size (dense rows beside sparse ones: equal shares do not fall on their bounds).  Measured
    (benchmarks/results/wgsd_2026-12-04, b; e4m3 on x's f16 operand, M = 1 / 32, us, one CTA per SM -> whole
    shares): 8B.qkv 14.0 / 15.9 -> 12.6 / 14.4, 8B.o 12.7 / 14.6 -> 12.3 / 14.0, 8B.gate_up 30.1 / 33.3 ->
    27.1 / 31.2, 8B.down 20.7 / 22.2 -> 17.2 / 18.9, 32B.down 36.4 / 37.9 -> 35.4 / 36.1; 32B.gate_up (400 blocks) on
    four whole blocks per CTA (100 CTAs) 59.2 / 64.0 -> 60.5 / 70.1, hence one per SM past 2 G.  The bound of
    128 units a CTA (the extension's own for grid 0) held e4m3 8B.o to 2 CTAs per block; 4 (92 units each) took it
    from 12.2 / 14.2 to 10.5 / 12.0 us at M = 16 / 32 (wgsd_2026-12-04, e), hence ``SK_CTA_UNITS``."""
    s = wgsd_sk_split() if split is None else split
    s = (-2 if kw.fp8 else -1) if s == -3 else s
    blocks = max(1, (kw.rows_sparse + kw.rows_dense) // 128)
    if s > 0:
        return min(n_sm, s * blocks)
    cs, cd = sk_block_units(kw)
    if s == 0 or (kw.rows_sparse and kw.rows_dense and cs != cd):
        return 0
    g = max(1, min(n_sm, sk_units(kw) // SK_CTA_UNITS))
    if blocks <= g:
        return blocks * (g // blocks)
    if s == -2 and blocks % 3 == 0 and blocks // 3 * 2 <= g:  # CTA 2j: block 3j and half of 3j+1; 2j+1 the rest
        return blocks // 3 * 2
    return -(-blocks // 2) if blocks <= 2 * g else 0


SK_PART = 32 * 256  # floats of one CTA's partial sums (csrc/spense_wgsd.cuh WSD_PART)
SK_MAX_BLOCKS = 1 << 16  # row blocks of 128 rows a layer may have under stream-K (the counts' length)
_sk_ws: dict = {}


@functools.lru_cache(maxsize=None)
def _sm_count(device: torch.device) -> int:
    """The SMs of the CUDA ``device`` (asked once)."""
    return torch.cuda.get_device_properties(device).multi_processor_count


def sk_workspace(device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The stream-K form's fp32 workspace (two partial sums per SM) and int32 counts (one per row block,
    zeroed here once; every launch leaves them zeroed) for ``device``, made on first use and kept: CUDA
    graphs hold their addresses.  None while a CUDA graph is being captured and none was made before
    (memory made there would belong to the graph's pool): :meth:`SpenseLinear.compact` makes it beforehand
    (this check does not see cudagraph trees' warm-up, which runs uncaptured in the graph's pool)."""
    key = (device.type, device_index(device))
    if key not in _sk_ws:
        if torch.cuda.is_current_stream_capturing():
            return None
        n_sm = _sm_count(torch.device("cuda", key[1]))
        _sk_ws[key] = (torch.empty(2 * n_sm * SK_PART, dtype=torch.float32, device=device),
                       torch.zeros(SK_MAX_BLOCKS, dtype=torch.int32, device=device))
    return _sk_ws[key]


def wgsp_layer_applies(kw: mmasp.KernelWeights, in_features: int, decode: bool = False) -> bool:
    """Whether the kernel can serve these weights at all: bf16 (or FP8 in the ``decode`` form) on an sm_90
    GPU, no column gather, K a multiple of 64, row tiles of each kind in eights (the kernel's CTAs hold 8 or
    16 row tiles of 16 rows)."""
    return (kw.sv.is_cuda and (decode or not kw.fp8) and kw.xperm is None and in_features % 64 == 0
            and kw.n_out > 0 and kw.rows_sparse % 128 == 0 and kw.rows_dense % 128 == 0
            and torch.cuda.get_device_capability(kw.sv.device) == (9, 0))


def wgsp_applies(kw: mmasp.KernelWeights, x2: torch.Tensor, decode: bool = False) -> bool:
    """:func:`wgsp_layer_applies` for a 2-D bf16 CUDA input ``x2`` (or its f16 operand, where
    :func:`wgsd_f16_x` says so) before loading anything."""
    if not (x2.is_cuda and x2.dim() == 2):
        return False
    f16 = x2.dtype == torch.float16 and decode and wgsd_f16_x(kw, x2.shape[0])
    return (x2.dtype == torch.bfloat16 or f16) and wgsp_layer_applies(kw, x2.shape[1], decode)


def wgsp_forward(kw: mmasp.KernelWeights, x2: torch.Tensor, decode: bool = False, stream_k: bool | None = None,
                 split: int | None = None, trace: torch.Tensor | None = None) -> torch.Tensor | None:
    """``x2 @ W.T`` (M, N) bf16 through the sparse warpgroup MMA kernel, or None where it does not apply
    (:func:`wgsp_applies`, an extension built for another arch than sm_90a, or the kernel's own refusal).
    ``decode``: the decode form (M <= 64; stream-K or K split over clusters as ``stream_k`` says, default
    as :func:`wgsd_stream_k` says); else the prefill form (in clusters of two under :func:`wgsp_cluster`, on
    256-token CTAs under :func:`wgsp_nt`, persistent under :func:`wgsp_persist`, its last wave split under
    :func:`wgsp_tail`).
    FP8 weights: the stream-K decode form only (None for the others); where :func:`wgsd_f16_x` holds, bf16 x
    is made its f16 operand here (one more launch), or ``x2`` is that operand already.  Stream-K only: ``split``
    its grid as :func:`wgsd_sk_ctas` takes it (None: :func:`wgsd_sk_split`); ``trace`` an int64 tensor of at
    least 4 per SM that takes each CTA's four clocks (entry, first operands, last MMAs, exit; timelines)."""
    if not wgsp_applies(kw, x2, decode) or (decode and x2.shape[0] > WGSD_MAX_M):
        return None
    ext = mmasp.load_extension()
    if mmasp._EXT_ARCH != "90a":
        return None
    mode = wgsd_stream_k() if stream_k is None else int(stream_k)
    long_rows = x2.shape[1] >= SK_MIN_K or kw.n_out * x2.shape[1] >= wgsd_sk_min_nk()
    sk = decode and (kw.fp8 or mode == 1 or (mode == 2 and (long_rows or x2.shape[0] <= 16)))
    wsc = sk_workspace(x2.device) if sk else None
    if wsc is not None:
        form, (ws, cnt) = 3, wsc
    elif kw.fp8:  # stream-K with no workspace yet: the caller's other kernel
        return None
    else:  # the prefill forms, the cluster decode form, or stream-K with no workspace yet
        prefill = 1 if wgsp_cluster() else 7 if wgsp_nt() == 256 else (6 if wgsp_tail() else 0, 4, 5)[wgsp_persist()]
        form, ws, cnt = (2 if decode else prefill), _EMPTY_F, _EMPTY_I
    if form == 3 and x2.dtype == torch.bfloat16 and wgsd_f16_x(kw, x2.shape[0]):
        x2 = f16_operand(x2)
    x2 = x2 if x2.stride(1) == 1 else x2.contiguous()
    y = torch.empty(x2.shape[0], kw.n_out, dtype=torch.bfloat16, device=x2.device)
    grid = wgsd_sk_ctas(kw, _sm_count(x2.device), split) if form == 3 else 0
    variant = wgsd_variant(kw, grid) if form == 3 else 32768 if form == 2 and wgsd_cl_pdl() else 0
    ok = ext.spense_wgsp(y, kw.sv, kw.sm, kw.dv, x2, kw.sblk, kw.dblk, kw.out_row, kw.rows_sparse // 16,
                         kw.rows_dense // 16, kw.Ss, kw.SdA, kw.SdB, form, ws, cnt, variant, kw.wscale, grid,
                         _EMPTY_L if trace is None else trace)
    return y if ok else None


def dense_fp8_kernel_weights(wq: torch.Tensor, scale: torch.Tensor) -> mmasp.KernelWeights:
    """A plain FP8 dense weight, ``W = wq * scale[:, None]`` (``wq`` (N, K) e4m3, ``scale`` (N,) float), in
    the decode kernels' layout as dense rows only (no 2:4 region), so that the stream-K decode form serves it:
    the FP8 dense baseline's weight-only GEMM from the same kernel as Spense FP8 (rows padded to 128, K to
    64 with zeros)."""
    N, K = wq.shape
    dev = wq.device
    Rdp, Kp = pad_to(N, 128), pad_to(K, 64)
    w8 = torch.zeros(Rdp, Kp, dtype=torch.uint8, device=dev)
    w8[:N, :K] = wq.view(torch.uint8)
    i32 = dict(dtype=torch.int32, device=dev)
    out_row = torch.full((Rdp,), -1, **i32)
    out_row[:N] = torch.arange(N, **i32)
    return mmasp.KernelWeights(torch.zeros(16, dtype=torch.uint8, device=dev), torch.zeros(1, **i32),
                               mmasp._frag(w8, 4, fp8=True).contiguous(), torch.zeros(1, **i32),
                               torch.arange(Kp // 64, **i32) * 64, out_row,
                               scale.to(device=dev, dtype=torch.float32).contiguous(), 0, Rdp, 0, 0, Kp // 64,
                               True, None, N)


@torch.library.custom_op("spense::wgsd_apply", mutates_args=())
def wgsd_apply(x2: torch.Tensor, sv: torch.Tensor, sm: torch.Tensor, dv: torch.Tensor, sblk: torch.Tensor,
               dblk: torch.Tensor, out_row: torch.Tensor, wscale: torch.Tensor, geo: list[int]) -> torch.Tensor:
    """``x2 @ W.T`` (M <= 64, bf16, or its f16 operand where :func:`wgsd_f16_x` says so) through the stream-K
    decode form, W the kernel layout given by its tensors and ``geo`` = [rows_sparse, rows_dense, Ss, SdA,
    SdB, fp8, n_out] (:func:`kernel_weights_op_args`): one opaque op, so that torch.compile traces a caller
    with no graph break.  Raises where the form declines."""
    kw = mmasp.KernelWeights(sv, sm, dv, sblk, dblk, out_row, wscale, *geo[:5], bool(geo[5]), None, geo[6])
    y = wgsp_forward(kw, x2, decode=True, stream_k=True)
    if y is None:
        raise DeviceError(f"spense: the stream-K decode form does not serve this weight at M = {x2.shape[0]}")
    return y


@wgsd_apply.register_fake
def _wgsd_apply_fake(x2, sv, sm, dv, sblk, dblk, out_row, wscale, geo):
    return x2.new_empty(x2.shape[0], geo[6], dtype=torch.bfloat16)


def kernel_weights_op_args(kw: mmasp.KernelWeights) -> tuple:
    """The arguments of :func:`wgsd_apply` after x for the kernel layout ``kw`` (no column gather)."""
    return (kw.sv, kw.sm, kw.dv, kw.sblk, kw.dblk, kw.out_row, kw.wscale,
            [kw.rows_sparse, kw.rows_dense, kw.Ss, kw.SdA, kw.SdB, int(kw.fp8), kw.n_out])
