"""The L2 prefetch plans (spense.runtime.prefetch) and their places in the engine's decode step: the
byte shares, the op kept by torch.compile, one prefetch after each GEMM of a decode step and none in
prefill, and on a GPU the launch (eager and in a CUDA graph) leaving tensors and tokens unchanged."""

import pytest
import torch

from spense.engine import Engine, load
from spense.engine.model import gemm_tensors
from spense.runtime import prefetch

CPU = torch.device("cpu")


def test_shares_proportional_capped_and_16_byte_units():
    assert prefetch.shares([1000, 3000], 2000) == [496, 1488]  # 500 / 1500 rounded down to 16
    assert prefetch.shares([1000, 3000], 10 ** 6) == [992, 2992]  # whole tensors, rounded down to 16
    assert prefetch.shares([1000, 3000], 0) == [0, 0]
    assert prefetch.shares([], 100) == []


def test_register_keeps_the_largest_tensors_and_forgets_dead_ones():
    ts = [torch.zeros(n, dtype=torch.uint8) for n in (64, 4096, 32, 2048, 1024, 16)]
    key = prefetch.register(ts, 1 << 20)
    assert prefetch.planned_bytes(key) == 4096 + 2048 + 1024 + 64  # the four largest, whole
    with pytest.raises(ValueError, match="contiguous"):
        prefetch.register([torch.zeros(8, 8).t()], 100)
    t = torch.zeros(4096, dtype=torch.uint8)
    key = prefetch.register([t], 1024)
    assert prefetch.planned_bytes(key) == 1024
    del t
    prefetch.launch(key)  # the tensor is gone: nothing to prefetch, no error


def test_set_prefetch_plans_the_next_gemm_after_each_one():
    m = load("qwen3-tiny", CPU, torch.float32).model
    m.fuse_projections()
    blocks = m.model.layers
    whole = m.set_prefetch(1 << 30)
    a, mlp = blocks[0].self_attn, blocks[0].mlp
    def nb(ts):
        return sum(t.numel() * t.element_size() for t in ts)

    assert prefetch.planned_bytes(a.pf[0]) == nb(gemm_tensors(a.o_proj))
    assert prefetch.planned_bytes(a.pf[1]) == nb(mlp.gate_up_tensors())
    assert prefetch.planned_bytes(mlp.pf[0]) == nb(gemm_tensors(mlp.down_proj))
    assert prefetch.planned_bytes(mlp.pf[1]) == nb(blocks[1].self_attn.qkv_tensors())
    assert prefetch.planned_bytes(blocks[-1].mlp.pf[1]) == nb(gemm_tensors(m.lm_head))
    assert mlp.gate_up_tensors()[0] is mlp.gate_up_weight  # the fused weight, not its members
    per = m.set_prefetch(4096)  # a small budget: at most 4096 bytes per GEMM
    assert 0 < per <= 4096 * 4 * len(blocks) < whole
    assert m.set_prefetch(0) == 0 and a.pf == (0, 0)


def test_one_prefetch_per_gemm_of_a_decode_step_none_in_prefill():
    m = load("qwen3-tiny", CPU, torch.float32).model
    m.setup_caches(1, 256)
    m.set_prefetch(1 << 20)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        n0 = prefetch.CALLS[0]
        m(ids, torch.arange(4), kv_len=128)
        assert prefetch.CALLS[0] == n0  # prefill
        m(ids[:, :1], torch.tensor([4]), kv_len=128)
        assert prefetch.CALLS[0] == n0 + 4 * len(m.model.layers)


def test_torch_compile_keeps_the_op():
    """The op returns nothing and mutates nothing: without its side-effect mark Inductor drops it."""
    w = torch.randn(32, 32)
    key = prefetch.register([w], 1024)

    def f(x):
        y = x @ w
        torch.ops.spense.l2_prefetch.default(y, key)
        return torch.relu(y) @ w

    torch._dynamo.reset()
    g = torch.compile(f, fullgraph=True)
    n0 = prefetch.CALLS[0]
    g(torch.randn(2, 32))
    g(torch.randn(2, 32))
    assert prefetch.CALLS[0] == n0 + 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_prefetch_launch_eager_graph_and_engine_tokens():
    dev = torch.device("cuda")
    ts = [torch.randn(3_000_001, device=dev), torch.randint(0, 255, (1 << 20,), dtype=torch.uint8, device=dev)]
    before = [t.clone() for t in ts]
    key = prefetch.register(ts, 8 << 20)
    prefetch.launch(key)
    g = torch.cuda.CUDAGraph()
    dep = torch.zeros(1, device=dev)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        prefetch.l2_prefetch(dep, key)  # warm-up (the Triton compile) outside the capture
        with torch.cuda.graph(g, stream=s):
            prefetch.l2_prefetch(dep, key)
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(ts, before))
    toks = []
    for mb in (0, 4):
        m = load("qwen3-tiny", dev, torch.bfloat16).model
        eng = Engine(m, 1, 256, compile=True, prefetch_mb=mb)
        assert (eng.prefetch_bytes > 0) == (mb > 0)
        toks.append(eng.generate([[1, 2, 3, 4, 5]], 8).tokens)
    assert toks[0] == toks[1]
