"""The mma.sp launchers' environment switches (``csrc/spense_mmasp_switches.cuh`` and ``xs_clamp`` in
``csrc/spense_mmasp.cu``), on the GPU (``gpu``): each switch changes which kernel runs or when bytes are asked for,
never the bits of the output, and the clamped kernels run where their switches say. Each setting runs in a process of
its own, since the extension reads its switches once per process."""

import os
from pathlib import Path

import pytest
import torch

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


_PERSIST_RUN = """
import sys, torch
sys.path.insert(0, sys.argv[2])
from test_mmasp import _block_layout
from test_runtime import pruned_24
from spense.format import SpenseLayout, pack
from spense.runtime.mmasp import mmasp_forward, to_kernel_layout
from spense.runtime.xops import f16_operand, gathered_fragments, x_perm
gen = torch.Generator().manual_seed(29)
out = {}
for N, K, axis in ((32768, 1024, "cols"), (512, 2048, "rows")):
    lay = _block_layout(N, K, 0.25, gen, "cpu") if axis == "cols" else SpenseLayout((N, K), "rows",
                                                                                    torch.arange(0, N, 4), block=16)
    w = pruned_24(lay, gen).to(torch.bfloat16)
    for fp8 in (False, True):
        kw = to_kernel_layout(pack(w, lay, fp8=fp8), "cuda")
        for M in (1, 7, 16):
            x = torch.randn(M, K, generator=gen).to("cuda", torch.bfloat16)
            for RT in (1, 2):
                for warps in (4, 8):
                    key = f"{N},{axis},{fp8},{M},{RT},{warps}"
                    out[key] = mmasp_forward(kw, x, RT=RT, warps=warps, stages=0, xfrag=True).cpu()
                    if fp8:
                        out[key + ",h"] = mmasp_forward(kw, x, RT=RT, warps=warps, stages=0,
                                                        xf=gathered_fragments(f16_operand(x), kw.xperm)).cpu()
            if fp8 and M <= 8 and kw.xperm is None:
                out[f"{N},{axis},{M},perm"] = mmasp_forward(kw, x_perm(f16_operand(x)), RT=1, warps=8, stages=0,
                                                            xperm=True).cpu()
torch.save(out, sys.argv[1])
"""


_XS_RUN = """
import sys, torch
sys.path.insert(0, sys.argv[2])
from test_mmasp import _block_layout
from test_runtime import pruned_24
from spense.format import pack
from spense.runtime.mmasp import mmasp_forward, to_kernel_layout
from spense.runtime.xops import gathered_fragments
gen = torch.Generator().manual_seed(31)
lay = _block_layout(32768, 1216, 0.25, gen, "cpu")
w = pruned_24(lay, gen).to(torch.bfloat16)
out = {}
for fp8 in (False, True):
    kw = to_kernel_layout(pack(w, lay, fp8=fp8), "cuda")
    assert (kw.Ss, kw.SdA) == (14, 5), (kw.Ss, kw.SdA)
    for M in (9, 16):
        x = torch.randn(M, 1216, generator=gen).to("cuda", torch.bfloat16)
        for warps in (4, 8):
            xf = gathered_fragments(x, kw.xperm)  # (bf16: x's f16 operand goes to the register kernel alone)
            out[f"{fp8},{M},{warps}"] = mmasp_forward(kw, x, RT=1, warps=warps, stages=0, xf=xf).cpu()
torch.save(out, sys.argv[1])
"""


def _kernel_env(extra: dict) -> dict:
    """This process's environment with the kernels' other switches as by default (a caller's SPENSE_MMASP_* would make
    a comparison of one switch moot; the prebuilt extension's path kept), plus ``extra``"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPENSE_MMASP_") or k == "SPENSE_MMASP_SO"}
    return {**env, **extra}


def _same_bits_in_each_env(tmp_path, runs, script=None, min_cases=40):
    """``script``'s outputs (default _PERSIST_RUN) in one process per entry of runs (name: extra environment; the
    kernels' switches are read once per process), each the same bits as the first entry's"""
    import subprocess
    import sys

    res = {}
    for name, extra in runs.items():
        path = tmp_path / f"y{name}.pt"
        env = _kernel_env(extra)
        r = subprocess.run([sys.executable, "-c", script or _PERSIST_RUN, str(path), str(Path(__file__).parent)],
                           env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (name, r.stderr[-2000:])
        res[name] = torch.load(path)
    first = next(iter(runs))
    assert all(res[n].keys() == res[first].keys() for n in runs) and len(res[first]) > min_cases
    for k, y in res[first].items():
        for n in runs:
            assert torch.equal(y, res[n][k]), (n, k)


@pytest.mark.gpu
@gpu
def test_gpu_mmasp_persistent_form_gives_the_same_bits(tmp_path):
    """SPENSE_MMASP_PERSIST=1 (spense_mmasp_persist.cuh, e4m3 weights): a CTA walks several row blocks (32768
    rows: more blocks than CTAs fit on the GPU at once; 512: fewer), each warp on the same steps as in the
    one-block kernel and the sums met in the same order, so the outputs are the same bits: x in bf16 or as its
    f16 operand (fragments and x_perm), RT 1 / 2, 4 / 8 warps, M = 1, 7, 16, cols and rows layouts (bf16
    weights keep the one-block kernel either way); and so do "2", which takes it where the grid fits in one
    wave, and "3", where it does not."""
    _same_bits_in_each_env(tmp_path, {"0": {}, "p1": {"SPENSE_MMASP_PERSIST": "1"},
                                      "p2": {"SPENSE_MMASP_PERSIST": "2"}, "p3": {"SPENSE_MMASP_PERSIST": "3"}})


@pytest.mark.gpu
@gpu
def test_gpu_mmasp_early_prologue_gives_the_same_bits(tmp_path):
    """SPENSE_MMASP_EARLY (spense_mmasp_reg.cuh: EARLY = 3, the first round's loads before the rows' scales are
    read, each warp's next round asked into L2) changes when bytes are asked for, not which are added in which
    order: the same bits with it off ("0"), where the default takes it (e4m3 on one-wave grids: 512 rows here, not
    32768) and everywhere ("3", bf16 too), over _PERSIST_RUN's cases"""
    _same_bits_in_each_env(tmp_path, {"0": {"SPENSE_MMASP_EARLY": "0"}, "auto": {},
                                      "3": {"SPENSE_MMASP_EARLY": "3"}})


@pytest.mark.gpu
@gpu
def test_gpu_mmasp_clamped_rounds_give_the_same_bits(tmp_path):
    """SPENSE_MMASP_CLAMP (spense_mmasp_reg.cuh: EARLY & 16, every step of a sparse round loaded, a step past the row
    block's last loading the last one again, its registers unused) changes which bytes are loaded, not which are
    added: the same bits with it off ("0") as by default (bf16 at NT = 2, e4m3 at NT = 2, RT = 2 and RT = NT = 1), over
    _PERSIST_RUN's cases (in its cols case a row block has fewer sparse steps than a round of 8 warps)"""
    _same_bits_in_each_env(tmp_path, {"0": {"SPENSE_MMASP_CLAMP": "0"}, "auto": {}})


@pytest.mark.gpu
@gpu
def test_gpu_mmasp_rt2_bound_to_256_threads_gives_the_same_bits(tmp_path):
    """SPENSE_MMASP_RT2_256 (the bf16 register kernel at RT = 2 bound to 256 threads, so built with no spills; "2"
    with every step of a round loaded too) changes the registers, not which products are added in which order: the
    same bits as without it, over _PERSIST_RUN's cases (bf16 at RT = 2 with 4 and 8 warps, M = 1, 7, 16); unset
    takes "2"."""
    _same_bits_in_each_env(tmp_path, {"0": {"SPENSE_MMASP_RT2_256": "0"}, "1": {"SPENSE_MMASP_RT2_256": "1"},
                                      "2": {"SPENSE_MMASP_RT2_256": "2"}, "unset": {}})


@pytest.mark.gpu
@gpu
def test_gpu_mmasp_xs_clamped_rounds_give_the_same_bits(tmp_path):
    """SPENSE_MMASP_XS_CLAMP=1 (spense_mmasp_xs.cuh: CLAMP, the shared-x kernel at NT = 2 with every step of a round
    loaded and at most 128 registers) adds the same sums in the same order: the same bits as without it, where the
    default takes the shared-x kernel (bf16 at M = 16 on 32768 rows) and where SPENSE_MMASP_XS=1 takes it for e4m3
    with x in bf16 too (x's f16 operand goes to the register kernel), over _PERSIST_RUN's cases and a layout whose
    last rounds hold steps past a row block's last"""
    _same_bits_in_each_env(tmp_path, {"0": {}, "c": {"SPENSE_MMASP_XS_CLAMP": "1"}})
    _same_bits_in_each_env(tmp_path, {"x": {"SPENSE_MMASP_XS": "1"},
                                      "xc": {"SPENSE_MMASP_XS": "1", "SPENSE_MMASP_XS_CLAMP": "1"}})
    # a row block's 14 sparse and 5 dense steps (K = 1216): the last round of each kind has steps past the last
    _same_bits_in_each_env(tmp_path, {"x": {"SPENSE_MMASP_XS": "1"},
                                      "xc": {"SPENSE_MMASP_XS": "1", "SPENSE_MMASP_XS_CLAMP": "1"}},
                           script=_XS_RUN, min_cases=7)


_XS_CLAMPED = r"spense_mmasp_xs_kernel<2, false, true, false>|spense_mmasp_xs_kernelILi2ELb0ELb1ELb0E"
_PERSISTENT = r"spense_mmasp_persist_kernel"
_RT2_256 = r"spense_mmasp_kernel<2, 2, 0, 4, 1, false, 1, |spense_mmasp_kernelILi2ELi2ELi0ELi4ELi1ELb0ELi1E"


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("switch, N, fp8, RT, kernel, cases", [
    ("SPENSE_MMASP_CLAMP", 512, True, 1, r"spense_mmasp_kernel<[^>]*, 16, false>|spense_mmasp_kernelI.*Li16ELb0EE",
     ((None, "1"), ("0", "0"))),
    ("SPENSE_MMASP_XS_CLAMP", 32768, False, 1, _XS_CLAMPED, (("1", "1"), ("0", "0"), (None, "1"))),
    ("SPENSE_MMASP_XS_CLAMP", 24576, False, 1, _XS_CLAMPED, ((None, "0"), ("1", "1"))),
    ("SPENSE_MMASP_PERSIST", 32768, True, 1, _PERSISTENT, (("3", "1"), (None, "0"), ("2", "0"))),
    ("SPENSE_MMASP_PERSIST", 512, True, 1, _PERSISTENT, (("3", "0"), ("1", "1"), ("2", "1"))),
    ("SPENSE_MMASP_RT2_256", 512, False, 2, _RT2_256, (("1", "1"), ("2", "1"), (None, "1"), ("0", "0")))])
def test_gpu_mmasp_launches_the_kernel_where_the_switch_says(tmp_path, switch, N, fp8, RT, kernel, cases):
    """A call at M = 16 (8 warps, RT row tiles) runs the kernel where its switch says (the cases: the switch's value,
    None unset, and "1" if that kernel ran, else "0"). SPENSE_MMASP_RT2_256 (bf16, RT = 2): "1" and "2" take the
    kernel bound to 256 threads (MINB = 1, the seventh template argument), and so does unset; "0" not. SPENSE_MMASP_PERSIST
    (e4m3): "3" takes the persistent form on a grid of more than one wave of the one-block kernel (32768 rows: 2048
    CTAs), not on one of 32 (512 rows); "2" the other way round; unset never.  The clamped kernels ("1" on, "0" off,
    None unset): SPENSE_MMASP_CLAMP (on when unset) takes the register kernel with EARLY = 16 (the template argument
    before the last, SSL, in its name) for e4m3; SPENSE_MMASP_XS_CLAMP the shared-x kernel's CLAMP form for bf16, by
    default where the unclamped grid does not fit on the GPU at once and the clamped kernel fits more: on a GPU of 132
    SMs (H100 SXM, H200; other GPUs skip the unset cases) 32768 rows are 512 CTAs of 4 warps, three resident per SM
    unclamped (142 registers; four clamped), so clamped; 24576 rows, 384 CTAs, fit, so not (the unset cases hold while
    nvcc gives the unclamped bf16 kernel 129-168 registers, three CTAs of 4 warps a SM: 142
    with the nvcc of the nineteenth stop; no test holds that count)"""
    import subprocess
    import sys

    code = """
import re, sys, torch
sys.path.insert(0, sys.argv[1])
from test_mmasp import _block_layout
from test_runtime import pruned_24
from spense.format import pack
from spense.runtime.mmasp import mmasp_forward, to_kernel_layout
from spense.runtime.xops import f16_operand, gathered_fragments
N, fp8, RT = int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[5])
gen = torch.Generator().manual_seed(3)
lay = _block_layout(N, 1024, 0.25, gen, "cpu")
kw = to_kernel_layout(pack(pruned_24(lay, gen).to(torch.bfloat16), lay, fp8=fp8), "cuda")
x = torch.randn(16, 1024, generator=gen).to("cuda", torch.bfloat16)
xf = gathered_fragments(f16_operand(x) if fp8 else x, kw.xperm)
mmasp_forward(kw, x, RT=RT, warps=8, stages=0, xf=xf)
torch.cuda.synchronize()
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    mmasp_forward(kw, x, RT=RT, warps=8, stages=0, xf=xf)
    torch.cuda.synchronize()
names = [e.name for e in prof.events() if "spense_mmasp" in e.name]
print(int(any(re.search(sys.argv[4], n) for n in names)), names)
"""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    for value, want in cases:
        if value is None and switch == "SPENSE_MMASP_XS_CLAMP" and sms != 132:
            continue
        env = _kernel_env({switch: value} if value is not None else {})
        r = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(N), str(int(fp8)), kernel,
                            str(RT)],
                           env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        last = r.stdout.strip().splitlines()[-1]
        assert last.split(" ", 1)[0] == want and "spense_mmasp" in last, (value, last)
