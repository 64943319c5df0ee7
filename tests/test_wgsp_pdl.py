"""The decode forms of the sparse warpgroup MMA kernel launched dependent (programmatic dependent launch): the
stream-K form under variant bit 32768 (``SPENSE_WGSD_EXP``, default 104449 = 6145 + 32768 + 65536; bf16 runs it as
36865), the cluster form under ``SPENSE_WGSD_CL_PDL=1``.  Their producers wait for the kernel before
(griddepcontrol.wait) only ahead of their first x load.  The bits of the plain launch, and x read only once the kernel
before that wrote it has completed: behind a Triton kernel that lets its dependents launch at once and writes x after
a spin."""

import functools

import pytest
import torch

from spense.runtime import wgsp
from spense.runtime.xops import f16_operand

import test_wgsp
from test_wgsp import sm90
from test_wgsp_stream_k import _same_bits, _spense_layers

env_switch = test_wgsp.env_switch  # the read-once switches' fixture


@functools.lru_cache(maxsize=None)
def _late_copy_kernel():
    """The Triton kernel of :func:`_late_copy` (made once; triton is imported only on a GPU run)."""
    import triton
    import triton.language as tl

    @triton.jit
    def late_copy(src_ptr, dst_ptr, n, spins, magic, BLOCK: tl.constexpr):
        tl.extra.cuda.gdc_launch_dependents()
        t = tl.full([1], 1, tl.int64)
        for _ in range(spins):
            t = (t * 1103515245 + 12345) % 2147483648
        bump = tl.sum(tl.where(t == magic, 1.0, 0.0), axis=0)  # never 1: magic is not the LCG's end value
        for o in range(0, n, BLOCK):
            offs = o + tl.arange(0, BLOCK)
            v = tl.load(src_ptr + offs, mask=offs < n)
            tl.store(dst_ptr + offs, (v.to(tl.float32) + bump).to(v.dtype), mask=offs < n)

    return late_copy


def _late_copy(src: torch.Tensor, spins: int) -> torch.Tensor:
    """A copy of ``src`` written by one Triton program that first lets the kernel after it launch
    (griddepcontrol.launch_dependents) and then spins ``spins`` steps of an LCG before storing: a dependent
    launch that reads the copy before this kernel completes reads the zeros it was made with."""
    t = 1
    for _ in range(spins):
        t = (t * 1103515245 + 12345) % 2147483648
    dst = torch.zeros_like(src)
    _late_copy_kernel()[(1,)](src, dst, src.numel(), spins, t + 1, BLOCK=1024)
    return dst


def _reads_after_the_writer(kw, ref, gen, M: int, fp8: bool, stream_k: bool, tag) -> None:
    """The layer on x written late by :func:`_late_copy` (x's f16 operand where the form takes it) equals the
    layer on x written beforehand, bit for bit."""
    x = torch.randn(M, ref.shape[1], generator=gen).to("cuda", torch.bfloat16)
    xin = f16_operand(x) if fp8 and wgsp.wgsd_f16_x(kw, M) else x
    y0 = wgsp.wgsp_forward(kw, xin, decode=True, stream_k=stream_k)
    torch.cuda.synchronize()
    y1 = wgsp.wgsp_forward(kw, _late_copy(xin, 200_000), decode=True, stream_k=stream_k)
    torch.cuda.synchronize()
    assert y0 is not None and torch.equal(y0, y1), tag
    r = x.double() @ ref.T
    assert ((y0.double() - r).norm() / r.norm()).item() <= 1e-2, tag


@pytest.mark.gpu
@sm90
def test_gpu_dependent_launch_gives_the_same_bits(env_switch):
    """38913 gives the bits of 6145, bf16 and e4m3, at M = 1, 16, 32 (and 64 in bf16: tiles of 64), on whole
    shares (-1), one CTA per SM (0) and two CTAs a block (behind plain launches: the order is the next test's)."""
    gen = torch.Generator().manual_seed(37)
    for fp8, kw, ref in _spense_layers(gen):
        for split in (-1, 0, 2):
            for M in (1, 16, 32) if fp8 else (1, 16, 32, 64):
                _same_bits(env_switch, kw, ref, M, gen, ("6145", "38913"), split, (fp8, split, M))


@pytest.mark.gpu
@sm90
def test_gpu_stream_k_launched_dependent_reads_x_after_the_writer(env_switch):
    """Under the default (104449) the stream-K form right behind a kernel that lets it launch at once and writes
    its x after a spin of 200,000 LCG steps gives the bits it gives on x written beforehand (a wait missing or misplaced would read
    zeros), bf16 and e4m3, at M = 1, 16, 32."""
    env_switch("SPENSE_WGSD_EXP", None)
    gen = torch.Generator().manual_seed(43)
    for fp8, kw, ref in _spense_layers(gen):
        for M in (1, 16, 32):
            _reads_after_the_writer(kw, ref, gen, M, fp8, True, (fp8, M))


@pytest.mark.gpu
@sm90
def test_gpu_cluster_form_launched_dependent_reads_x_after_the_writer(env_switch):
    """SPENSE_WGSD_CL_PDL=1: the cluster decode form (bf16) gives the bits of its plain launch, bit for bit, at M =
    1, 16, 32, 64, and right behind a kernel that lets it launch at once and writes its x late the same bits
    again; with a K split (8 row blocks) and without (136 row blocks: as many as the SMs or more)."""
    gen = torch.Generator().manual_seed(41)
    layers = [*_spense_layers(gen, fp8s=(False,)), *_spense_layers(gen, 17408, 1024, fp8s=(False,))]
    for _, kw, ref in layers:
        for M in (1, 16, 32, 64):
            _same_bits(env_switch, kw, ref, M, gen, ("0", "1"), None, (kw.n_out, M), "SPENSE_WGSD_CL_PDL", False)
            env_switch("SPENSE_WGSD_CL_PDL", "1")
            _reads_after_the_writer(kw, ref, gen, M, False, False, (kw.n_out, M))
