"""Weight-only FP8 dense GEMM ("W8A16"): the Triton kernel of the FP8 dense baseline.

``y[m, n] = scale[n] * sum_k x[m, k] * e4m3(wq[n, k])``

with ``wq`` ``(N, K)`` float8_e4m3fn (per-output-channel scales ``scale`` ``(N,)`` float32), ``x``
``(M, K)`` bf16/fp16, fp32 accumulation, output in ``x.dtype``.  Each program owns ``BLOCK_M`` token
rows x ``BLOCK_N`` output channels and one of ``SPLIT_K`` slices of K; the e4m3 tile is converted to
``x.dtype`` in registers and fed to ``tl.dot``.  ``SPLIT_K = 1`` stores the scaled result directly;
``SPLIT_K > 1`` stores each slice's scaled partial sums in its own plane of a float32 buffer
``(SPLIT_K, M, N)`` (every element written: no zeroing), and one more launch (``sum_splits_kernel``)
adds the planes in a fixed order and casts: two launches, deterministic.  (Until e2e v10 the slices
were added with atomics into a zeroed buffer and cast apart: four launches.)  A config's seventh element
``serial = 1`` makes it one launch: each slice stores its plane, then counts itself in an int32 counter of
its output tile (one atomic after a barrier, release and acquire at GPU scope), and the slice that counts
last adds the ``SPLIT_K`` planes in the same fixed order (loads past L1), casts, stores, and sets the
counter back to 0, so the counters (:func:`tile_counters`, zeroed once per device) need no reset between
launches: the same bits as the two launches.  Any M, N, K (tails are masked).

``xh``: x is the f16 operand ``x * 2^-8`` (:func:`spense.runtime.xops.f16_operand`): the e4m3 tile goes to
f16 (one cvt a pair), ``tl.dot`` runs in f16, the epilogue multiplies by 2^8 and the output is bf16.

``SPENSE_FP8_PDL=1`` (:func:`fp8_pdl`, off by default: measured slower) launches the kernel dependent
(programmatic dependent launch, sm_90): each program loads its first weight tile, then waits for the kernel
before (``gdc_wait``) ahead of its first x load; it never lets the kernel after it launch early, so the split-K
tile counters stay this launch's until it exits (as the stream-K Spense form, variant bit 32768).

Registered as the custom op ``spense::fp8_w8a16_mm`` (CUDA: the Triton kernel; CPU: the same
arithmetic in float32 — the reference), with a fake implementation for ``torch.compile``.
"""

from __future__ import annotations

import os

import torch

from spense.runtime.shapes import device_index
from spense.runtime.xops import _env_int, read_once

try:  # Triton is only needed on CUDA
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - no triton
    triton = None
    tl = None

# (BLOCK_N, BLOCK_K, SPLIT_K, num_warps[, MODE[, num_stages]]): the decode candidates measured per shape and M
# bucket (MODE 0 = x @ w.T MMA, 1 = w @ x.T MMA, 2 = CUDA-core dot products, M <= 4 only)
DECODE_CONFIGS: tuple[tuple[int, ...], ...] = (  # checked + measured on the H200 (v4)
    (32, 128, 1, 4), (32, 256, 1, 4), (32, 256, 2, 4), (32, 256, 4, 4),
    (64, 128, 1, 4), (64, 256, 2, 8),
    # deeper rings, the fastest somewhere in results ak (benchmarks/results/wgsd_2026-12-01): (64, 256, 1, 4, 0, 4)
    # on the gate_up and qkv shapes of 8B and 32B (8B.gate_up at M = 1: 27.9 us against 29.7 for the best
    # of the configs above), the other two on 8B.o at M = 8 and 16
    (64, 256, 1, 4, 0, 4), (32, 256, 2, 4, 0, 5), (32, 256, 1, 4, 0, 6),
    # split-K in one launch (seventh element serial = 1, module doc): the fastest of every config measured on the
    # o and down shapes of 8B and 32B at M = 1, 8, 16 in results aq + ar (benchmarks/results/wgsd_2026-12-02),
    # 0.3-1.7 us under the two-launch configs (8B.down at M = 1: 17.7 against 18.8 us)
    (32, 256, 4, 4, 0, 0, 1),
)
# checked under TRITON_INTERPRET=1 only (the device run that was to measure them stopped at an
# out-of-resources config, now excluded by `fits`); measured on the H200 in results ah (8B / 32B gate_up and
# down, M = 1 and 16), where none of them won, in either x form: not `auto` candidates
EXTRA_CONFIGS: tuple[tuple[int, ...], ...] = (
    (64, 256, 1, 4, 1), (64, 256, 2, 4, 1), (64, 256, 4, 4, 1), (128, 128, 1, 4, 1), (64, 512, 4, 4, 1),
    (32, 512, 4, 4), (32, 256, 8, 4),
    (16, 256, 1, 4, 2), (16, 256, 4, 4, 2), (32, 256, 2, 4, 2), (16, 512, 4, 4, 2),
    # a sixth element: Triton's pipelining depth (num_stages; default STAGES): deeper rings, for the qkv and o
    # shapes, whose launches are short (written after results ai, where the baseline stayed at 69-76 % of
    # cuBLAS BF16's GB/s on 8B.qkv, 8B.o and 32B.qkv); measured in results ak, where three of the eight won
    # somewhere (now in DECODE_CONFIGS) and these five nowhere
    (16, 256, 1, 4, 0, 6), (16, 512, 1, 4, 0, 4), (32, 512, 1, 4, 0, 4), (16, 256, 2, 4, 0, 5), (64, 128, 1, 4, 0, 6),
    # a seventh element: split-K in one launch (serial = 1, module doc): the split-K configs (8B.o and 8B.down at
    # M = 1 in the table) pay a second launch (results ap: 72 sum_splits launches, 0.09 ms of the 8B FP8 step at B = 1);
    # measured in results ar (o and down shapes, M = 1, 8, 16): each beat its two-launch twin by 0.2-2.5 us, but
    # only (32, 256, 4, 4, 0, 0, 1) was the fastest anywhere (now in DECODE_CONFIGS)
    (32, 256, 2, 4, 0, 0, 1), (64, 256, 2, 8, 0, 0, 1), (32, 256, 2, 4, 0, 5, 1), (32, 256, 8, 4, 0, 0, 1),
)
PREFILL_CONFIG = (128, 64, 1, 8)  # M > 64 (BLOCK_M 64): correct everywhere, rarely the fastest
MAX_DECODE_M = 64


def block_m(M: int, mode: int = 0) -> int:
    """Token rows per program: 16 (tl.dot minimum) up to 64 for decode, 64 beyond; mode 2 (CUDA-core
    dot products): the next power of two >= M, at most 4."""
    if mode == 2:
        return 1 if M <= 1 else 2 if M <= 2 else 4
    b = 16
    while b < M and b < 64:
        b *= 2
    return b


SMEM_BUDGET = 200 * 1024  # bytes of shared memory a config may plan for (H100/H200: 227 KB per CTA)
STAGES = 3  # Triton's default software-pipelining depth on sm90


def serial_of(cfg) -> int:
    """Whether a split-K config sums its slices in one launch (its seventh element, module doc)."""
    return int(cfg[6]) if len(cfg) > 6 else 0


MAX_TILES = 1 << 16  # output tiles a one-launch split-K can count (N / BLOCK_N x M / BLOCK_M); past it: two launches
_tile_cnt: dict = {}


def tile_counters(device: torch.device) -> torch.Tensor | None:
    """The int32 counters of the one-launch split-K for ``device`` (:data:`MAX_TILES`, zeroed here once; every
    launch leaves them zeroed), made on first use and kept: CUDA graphs hold their address.  None while a CUDA
    graph is being captured and none was made before (memory made there would belong to the graph's pool): the
    launch then takes the two-launch form.  Shared by every layer of the device, as the stream-K form's counts
    (:func:`spense.runtime.wgsp.sk_workspace`): launches on one stream at a time, as the engine runs them."""
    key = (device.type, device_index(device))
    if key not in _tile_cnt:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            return None
        _tile_cnt[key] = torch.zeros(MAX_TILES, dtype=torch.int32, device=device)
    return _tile_cnt[key]


def stages_of(cfg) -> int:
    """The pipelining depth of a config: its sixth element where given and > 0, else :data:`STAGES`."""
    return cfg[5] if len(cfg) > 5 and cfg[5] > 0 else STAGES


def fits(cfg, M: int, w_bytes: int = 1) -> bool:
    """Whether ``cfg`` at ``M`` tokens stays within :data:`SMEM_BUDGET`: ``stages * (BLOCK_M * BLOCK_K
    * 2 + BLOCK_N * BLOCK_K * w_bytes)`` bytes of pipelined x (bf16) and weight (e4m3: 1 byte, bf16: 2) tiles;
    mode 2 needs M <= 4.  (The v4 device run hit ``OutOfResources`` with (64, 512, 4, 4, 1) at M = 64: 262 KB.)"""
    bn, bk = cfg[0], cfg[1]
    mode = cfg[4] if len(cfg) > 4 else 0
    if mode == 2:
        return M <= 4
    return stages_of(cfg) * (block_m(M, mode) * bk * 2 + bn * bk * w_bytes) <= SMEM_BUDGET


def default_config(M: int, N: int, K: int) -> tuple[int, int, int, int]:
    """Launch config without a measurement: BLOCK_N 32, BLOCK_K 256, split-K so that the grid has
    at least ~2 programs per SM of a 132-SM GPU (decode), or the prefill tile."""
    if M > MAX_DECODE_M:
        return PREFILL_CONFIG
    progs = triton.cdiv(N, 32) if triton else (N + 31) // 32
    sk = 1
    while sk < 4 and progs * sk < 264 and K >= 1024 * sk * 2:
        sk *= 2
    return (32, 256, sk, 4)


@read_once
def fp8_pdl() -> bool:
    """Whether the W8A16 kernel is launched dependent (``SPENSE_FP8_PDL``, read once: 0, default, or 1; module
    doc), on an sm_90+ CUDA device and never under the interpreter (:func:`launch_w8a16`).  Written so that the FP8
    dense baseline overlaps the kernel before it as the Spense kernels do (their dependent launches: the register
    kernel since e2e v15, the stream-K form since v44).  Off: the 8B dense FP8 step ran 1.0 % (B = 1) and 1.5 %
    (B = 8) slower with it (results r, wgsd_2026-12-04), so the plain launch stays the faster baseline."""
    return bool(_env_int("SPENSE_FP8_PDL", 0, 0, 1))


if triton is not None:

    @triton.jit
    def _w8a16_step(acc, w, x, DOT_DT: tl.constexpr, MODE: tl.constexpr):
        """acc plus one K step's products (MODE as :func:`w8a16_kernel`)."""
        if MODE == 0:
            acc += tl.dot(x.to(DOT_DT), tl.trans(w.to(DOT_DT)))
        elif MODE == 1:
            acc += tl.dot(w.to(DOT_DT), tl.trans(x.to(DOT_DT)))
        else:
            acc += tl.sum(w.to(tl.float32)[:, None, :] * x.to(tl.float32)[None, :, :], axis=2)
        return acc

    @triton.jit
    def w8a16_kernel(x_ptr, w_ptr, s_ptr, y_ptr, out_ptr, cnt_ptr, M, N, K, stride_xm, stride_wn, stride_ym,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     SPLIT_K: tl.constexpr, DOT_DT: tl.constexpr, MODE: tl.constexpr, UNSCALE: tl.constexpr,
                     SERIAL: tl.constexpr = False, PDL: tl.constexpr = 0, SCALED: tl.constexpr = True):
        # MODE 0: acc (M, N) += x @ w.T;  MODE 1: acc (N, M) += w @ x.T (the converted weight tile is
        # the MMA's A operand, tokens the n dimension);  MODE 2: CUDA-core dot products (BLOCK_M <= 4)
        pid_n = tl.program_id(0)
        pid_m = tl.program_id(1)
        pid_k = tl.program_id(2)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        n_mask = rn < N
        m_mask = rm < M
        k_per = tl.cdiv(K, SPLIT_K * BLOCK_K) * BLOCK_K
        k_lo = pid_k * k_per
        k_hi = tl.minimum(k_lo + k_per, K)
        if MODE == 0:
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        else:
            acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
        # PDL 2 (launched dependent): the first step's weight tile (constant) loaded before the wait for the kernel
        # before, its x (that kernel's output) after; 1: the same first step peeled off the loop, with no wait (the
        # interpreter's check of its arithmetic)
        k_start = k_lo
        if PDL > 0:
            rk = k_lo + tl.arange(0, BLOCK_K)
            k_mask = rk < k_hi
            w = tl.load(w_ptr + rn[:, None] * stride_wn + rk[None, :],
                        mask=n_mask[:, None] & k_mask[None, :], other=0.0)
            if PDL == 2:
                tl.extra.cuda.gdc_wait()
            x = tl.load(x_ptr + rm[:, None] * stride_xm + rk[None, :],
                        mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            acc = _w8a16_step(acc, w, x, DOT_DT, MODE)
            k_start = k_lo + BLOCK_K
        for k0 in range(k_start, k_hi, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            k_mask = rk < k_hi
            w = tl.load(w_ptr + rn[:, None] * stride_wn + rk[None, :],
                        mask=n_mask[:, None] & k_mask[None, :], other=0.0)
            x = tl.load(x_ptr + rm[:, None] * stride_xm + rk[None, :],
                        mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            acc = _w8a16_step(acc, w, x, DOT_DT, MODE)
        if SCALED:  # off: a bf16 / f16 weight with no scales (spense.runtime.dense)
            sc = tl.load(s_ptr + rn, mask=n_mask, other=0.0)
            if UNSCALE != 1.0:  # 2^8 for the f16 operand (compile time: the bf16 kernel is unchanged)
                sc = sc * UNSCALE
            if MODE == 0:
                acc = acc * sc[None, :]
            else:
                acc = acc * sc[:, None]
        if MODE == 0:
            off = rm[:, None] * stride_ym + rn[None, :]
            msk = m_mask[:, None] & n_mask[None, :]
        else:
            off = rm[None, :] * stride_ym + rn[:, None]
            msk = n_mask[:, None] & m_mask[None, :]
        if SPLIT_K == 1:
            tl.store(y_ptr + off, acc.to(y_ptr.dtype.element_ty), mask=msk)
        else:  # this slice's plane of the (SPLIT_K, M, N) float32 buffer
            tl.store(y_ptr + pid_k * M * stride_ym + off, acc, mask=msk)
            if SERIAL:  # the last slice of this tile to count itself adds the planes in order, then resets
                tl.debug_barrier()  # every thread's plane stores before the count (CUTLASS's semaphore order)
                tile = cnt_ptr + pid_m * tl.num_programs(0) + pid_n
                if tl.atomic_add(tile, 1, sem="acq_rel", scope="gpu") == SPLIT_K - 1:
                    tot = tl.load(y_ptr + off, mask=msk, other=0.0, cache_modifier=".cg")
                    for k in tl.static_range(1, SPLIT_K):
                        tot += tl.load(y_ptr + k * M * stride_ym + off, mask=msk, other=0.0, cache_modifier=".cg")
                    tl.store(out_ptr + off, tot.to(out_ptr.dtype.element_ty), mask=msk)
                    tl.atomic_xchg(tile, 0, sem="relaxed", scope="gpu")

    @triton.jit
    def sum_splits_kernel(ws_ptr, y_ptr, numel, SPLIT_K: tl.constexpr, BLOCK: tl.constexpr):
        """``y = sum_k ws[k]`` over the ``SPLIT_K`` planes of ``numel`` float32, in order, cast to y's dtype."""
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        msk = offs < numel
        acc = tl.load(ws_ptr + offs, mask=msk, other=0.0)
        for k in tl.static_range(1, SPLIT_K):
            acc += tl.load(ws_ptr + k * numel + offs, mask=msk, other=0.0)
        tl.store(y_ptr + offs, acc.to(y_ptr.dtype.element_ty), mask=msk)


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _pdl_on(device: torch.device) -> bool:
    """:func:`fp8_pdl` on an sm_90+ CUDA device, never under the interpreter."""
    return (fp8_pdl() and not _interpreted() and device.type == "cuda" and torch.version.hip is None
            and torch.cuda.get_device_capability(device)[0] >= 9)


def launch_w8a16(x: torch.Tensor, wq: torch.Tensor, scale: torch.Tensor | None,
                 cfg: tuple[int, int, int, int], xh: bool = False, pdl: int | None = None) -> torch.Tensor:
    """Run the Triton kernel (CUDA tensors, or CPU under ``TRITON_INTERPRET=1``); ``xh``: x is the f16
    operand (module doc), the output bf16.  ``scale`` None: ``wq`` is a weight of x's dtype with no scales
    (the dense BF16 streaming kernel, :mod:`spense.runtime.dense`), ``y = x @ wq.T``.  ``pdl``: 2 launched dependent, 0 not, 1 the dependent form's
    first step peeled off the loop without the wait (checks); None: 2 where :func:`fp8_pdl` holds on an sm_90+
    CUDA device, else 0."""
    M, K = x.shape
    N = wq.shape[0]
    bn, bk, sk, nw = cfg[:4]
    mode = cfg[4] if len(cfg) > 4 else 0
    ns = {"num_stages": cfg[5]} if len(cfg) > 5 and cfg[5] > 0 else {}  # else Triton's default (STAGES)
    if mode == 2 and M > 4:
        raise ValueError("w8a16 mode 2 (CUDA-core) serves M <= 4")
    bm = block_m(M, mode)
    x = x.contiguous()
    if _interpreted() or x.dtype == torch.float32:
        dot_dt = tl.float32  # the CPU interpreter computes bf16 dots wrongly; same logic in fp32
    else:
        dot_dt = tl.float16 if x.dtype == torch.float16 else tl.bfloat16
    y = torch.empty(M, N, dtype=torch.bfloat16 if xh else x.dtype, device=x.device)
    ws = y if sk == 1 else torch.empty(sk, M, N, dtype=torch.float32, device=x.device)
    grid = (triton.cdiv(N, bn), triton.cdiv(M, bm), sk)
    cnt = tile_counters(x.device) if sk > 1 and serial_of(cfg) and grid[0] * grid[1] <= MAX_TILES else None
    if pdl is None:
        pdl = 2 if _pdl_on(x.device) else 0
    dep = {"launch_pdl": True} if pdl == 2 else {}
    w8a16_kernel[grid](x, wq, wq if scale is None else scale, ws, y, ws if cnt is None else cnt, M, N, K,
                       x.stride(0), wq.stride(0), N, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=sk, DOT_DT=dot_dt,
                       MODE=mode, UNSCALE=256.0 if xh else 1.0, SERIAL=cnt is not None, PDL=pdl,
                       SCALED=scale is not None, num_warps=nw, **ns, **dep)
    if sk > 1 and cnt is None:
        sum_splits_kernel[(triton.cdiv(M * N, 1024),)](ws, y, M * N, SPLIT_K=sk, BLOCK=1024)
    return y


def w8a16_reference(x: torch.Tensor, wq: torch.Tensor, scale: torch.Tensor, xh: bool = False) -> torch.Tensor:
    """``(x @ (e4m3(wq) * scale[:, None]).T)`` in float32, cast to ``x.dtype`` (``xh``: times 2^8, bf16)."""
    y = (x.float() @ wq.float().t()) * scale.float()[None, :]
    return (y * 256.0).to(torch.bfloat16) if xh else y.to(x.dtype)


@torch.library.custom_op("spense::fp8_w8a16_mm", mutates_args=())
def fp8_w8a16_mm_op(x: torch.Tensor, wbytes: torch.Tensor, scale: torch.Tensor, block_n: int = 0,
                    block_k: int = 0, split_k: int = 0, num_warps: int = 0, mode: int = 0,
                    xh: bool = False, num_stages: int = 0, serial: int = 0) -> torch.Tensor:
    """``y (M, N) = x @ (e4m3(wbytes) * scale[:, None]).T`` (weight-only FP8); ``wbytes``: the e4m3
    weight as uint8 bytes (``wq.view(torch.uint8)``; raw bytes so that opcheck can compare inputs).
    ``block_n = 0``: default launch config.  ``xh``: x is the f16 operand ``x * 2^-8``, y bf16.
    ``num_stages`` 0: Triton's default pipelining depth; ``serial`` 1: split-K in one launch (module doc)."""
    wq = wbytes.view(torch.float8_e4m3fn)
    if x.is_cuda and triton is not None:
        cfg = (block_n, block_k, split_k, num_warps, mode, num_stages, serial) if block_n else default_config(
            x.shape[0], wq.shape[0], wq.shape[1])
        return launch_w8a16(x, wq, scale, cfg, xh)
    return w8a16_reference(x, wq, scale, xh)


@fp8_w8a16_mm_op.register_fake
def _(x, wbytes, scale, block_n=0, block_k=0, split_k=0, num_warps=0, mode=0, xh=False, num_stages=0, serial=0):
    torch._check(x.shape[1] == wbytes.shape[1])
    return x.new_empty(x.shape[0], wbytes.shape[0], dtype=torch.bfloat16 if xh else x.dtype)


def fp8_w8a16_mm(x: torch.Tensor, wq: torch.Tensor, scale: torch.Tensor, block_n: int = 0, block_k: int = 0,
                 split_k: int = 0, num_warps: int = 0, mode: int = 0, num_stages: int = 0, serial: int = 0,
                 xh: bool = False) -> torch.Tensor:
    """``spense::fp8_w8a16_mm`` for an e4m3 (or uint8-bytes) weight ``wq``; ``(block_n, ..., serial)``: a
    config tuple as :data:`DECODE_CONFIGS` holds them, unpacked."""
    return fp8_w8a16_mm_op(x, wq.view(torch.uint8), scale, block_n, block_k, split_k, num_warps, mode, xh,
                           num_stages, serial)
