"""The engine on CPU: HF-identical greedy tokens (batched, left-padded), Spense checkpoints packed or
not, sampling, no graph breaks in a decode step with Spense layers, bad input (`spense generate`: test_cli_generate)."""

import json
import warnings

import pytest
import torch
import torch._dynamo

from conftest import prune_and_pack
from spense.engine import Engine, load, sample
from spense.engine.generate import decode_step
from spense.engine.sparsify import block_linears, sparsify
from spense.errors import InputError
from spense.runtime.linear import SpenseLinear

CPU = torch.device("cpu")


def _hf_greedy(hf, prompt, n):
    ids = torch.tensor([prompt])
    return hf.generate(ids, max_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(ids),
                       pad_token_id=0)[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen3Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, vocab_size=300, max_position_embeddings=512,
                      tie_word_embeddings=True)
    d = tmp_path_factory.mktemp("m") / "qwen3"
    Qwen3ForCausalLM(cfg).eval().save_pretrained(d)
    return d


def test_greedy_equals_hf_batched_left_padded(tiny_llama_dir, qwen3_dir):
    from transformers import AutoModelForCausalLM

    for d in (tiny_llama_dir, qwen3_dir):
        hf = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        eng = Engine(load(str(d), CPU, torch.float32).model, 3, 200)
        prompts = [[5, 7, 9, 11, 13, 17, 19], [3, 4], [8]]
        got = eng.generate(prompts, 12).tokens
        assert got == [_hf_greedy(hf, p, 12) for p in prompts]
        # a batch smaller than the cache's (one prompt in an engine made for 3) uses its leading rows
        assert eng.generate([prompts[0]], 12).tokens == [_hf_greedy(hf, prompts[0], 12)]


@pytest.mark.parametrize("fused", ["1", "0"])
def test_split_attention_fused_or_not_equals_hf(qwen3_dir, fused, monkeypatch, request):
    """``attention="split"`` on CPU (the ops' reference paths), with ``SPENSE_ATTN_FUSED`` on (q/k norms, RoPE and
    the cache writes inside ``spense::decode_attention_fused``) and off: transformers' greedy tokens, batched
    and left-padded (RoPE positions and masks per row)."""
    from transformers import AutoModelForCausalLM

    from spense.runtime.attention import fused_on

    monkeypatch.setenv("SPENSE_ATTN_FUSED", fused)
    fused_on.cache_clear()
    request.addfinalizer(fused_on.cache_clear)
    hf = AutoModelForCausalLM.from_pretrained(qwen3_dir, dtype=torch.float32).eval()
    eng = Engine(load(str(qwen3_dir), CPU, torch.float32).model, 2, 200, attention="split")
    assert all(b.self_attn.fused == (fused == "1") for b in eng.model.model.layers)
    prompts = [[5, 7, 9, 11, 13, 17, 19], [3, 4]]
    assert eng.generate(prompts, 10).tokens == [_hf_greedy(hf, p, 10) for p in prompts]


@pytest.mark.parametrize("tie", [False, True])
def test_spense_checkpoint_packed_and_not(tiny_llama_dir, tiny_text_file, tmp_path, tie):
    """A model pruned by ``spense prune`` (dense-with-zeros checkpoint) and the same checkpoint packed by
    ``spense pack``: the engine loads both as SpenseLinear models, their greedy tokens equal those of
    transformers on the pruned checkpoint, and ``spense generate`` runs on each.  ``--tie-cols``: q/k/v
    and gate/up load as one fused Spense layer each."""
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from spense.cli import app

    run = CliRunner().invoke
    out, packed = prune_and_pack(tiny_llama_dir, tiny_text_file, tmp_path, *(["--tie-cols"] if tie else []))
    hf = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    want = _hf_greedy(hf, [1, 2, 3, 4, 5], 10)
    for ckpt in (out, packed):
        m = load(str(ckpt), CPU, torch.float32).model
        assert all(isinstance(x, SpenseLinear) for x in block_linears(m).values()), ckpt
        fused = [b.self_attn.qkv_fused is not None and b.mlp.gate_up_fused is not None for b in m.model.layers]
        assert all(fused) if tie else not any(fused), (ckpt, fused)
        assert Engine(m, 1, 200).generate([[1, 2, 3, 4, 5]], 10).tokens[0] == want, ckpt
        g = run(app, ["generate", str(ckpt), "--prompt", "The game", "-n", "4", "--device", "cpu"])
        assert g.exit_code == 0 and "tokens/s" in g.output, g.output


def test_sampling_rules():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 5.0, 4.9, -3.0]])
    assert sample(logits).item() == 1
    seen = {sample(logits, 1.0, 0.5).item() for _ in range(50)}
    assert seen == {1}  # top-p 0.5: only the most likely token (mass 0.52) survives
    seen = {sample(logits, 1.0, 0.99).item() for _ in range(200)}
    assert seen == {1, 2}


@pytest.mark.parametrize("attention,fused", [("sdpa", "1"), ("matmul", "1"), ("split", "1"), ("split", "0")])
def test_decode_step_with_spense_layers_has_no_graph_break(tiny_llama_dir, attention, fused, monkeypatch, request):
    from spense.runtime.attention import fused_on

    monkeypatch.setenv("SPENSE_ATTN_FUSED", fused)
    fused_on.cache_clear()
    request.addfinalizer(fused_on.cache_clear)
    m = load(str(tiny_llama_dir), CPU, torch.float32).model
    sparsify(m, 0.25, block=16, backend="auto")  # CPU: auto runs the reference path, traceable too
    m.setup_caches(2, 128)
    m.set_attention(attention)  # split: spense::decode_attention(_fused), traced through its fake
    tok = torch.tensor([[3], [4]])
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = torch._dynamo.explain(decode_step)(m, tok, torch.tensor([5]), torch.zeros(2, dtype=torch.long),
                                                128, 0.0, 1.0)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons


@pytest.mark.parametrize("variant", ["llama3_rope", "linear_rope", "biases"])
def test_llama_variants_greedy_equal_hf(variant, tmp_path, monkeypatch):
    """Llama 3.x RoPE scaling, linear scaling, and biases on q/k/v/o and the MLP: the engine's greedy tokens are
    transformers' own."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if variant == "llama3_rope":  # a short original context, so that head_dim 16's frequencies fall in all 3 bands
        rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    elif variant == "linear_rope":
        rope = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}
    biases = variant == "biases"
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, vocab_size=300, max_position_embeddings=512,
                      rope_parameters=rope, attention_bias=biases, mlp_bias=biases)
    hf = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for n, prm in hf.named_parameters():
            if n.endswith(".bias"):
                prm.normal_(0, 0.5)
    hf.save_pretrained(tmp_path / variant)
    eng = Engine(load(str(tmp_path / variant), CPU, torch.float32).model, 1, 200)
    import spense.engine.generate as gen

    seen, sample = [], gen.sample
    monkeypatch.setattr(gen, "sample", lambda logits, *a, **k: seen.append(logits[0].clone()) or sample(logits, *a, **k))
    for prompt in ([5, 7, 9, 11, 13, 17, 19] * 6, [3, 4]):
        seen.clear()
        got = eng.generate([prompt], 12).tokens
        assert got == [_hf_greedy(hf, prompt, 12)]
        with torch.no_grad():  # the logits too, not only their argmax
            want = hf(torch.tensor([prompt + got[0]])).logits[0, len(prompt) - 1:-1]
        torch.testing.assert_close(torch.stack(seen), want, atol=1e-5, rtol=1e-5)


def test_rope_scaling_the_engine_does_not_compute_is_refused_by_name():
    from spense.engine.args import rope_scaling_of

    with pytest.raises(InputError, match=r"llama: RoPE scaling 'yarn' is not supported by the engine"):
        rope_scaling_of("llama", {"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(InputError, match=r"RoPE scaling 'llama3' lacks a number for 'low_freq_factor'"):
        rope_scaling_of("llama", {"rope_type": "llama3", "factor": 8.0})


def test_bad_input(tiny_llama_dir, tmp_path):
    eng = Engine(load(str(tiny_llama_dir), CPU, torch.float32).model, 1, 128)
    with pytest.raises(InputError, match="does not fit"):
        eng.generate([list(range(1, 200))], 4)
    with pytest.raises(InputError, match="do not fit"):
        eng.generate([[1, 2, 3]], 500)
    with pytest.raises(InputError, match="positions"):
        Engine(eng.model, 1, 10_000)
    import json
    import shutil

    other = tmp_path / "gpt2ish"
    shutil.copytree(tiny_llama_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="unsupported architecture 'gpt2'"):
        load(str(other), CPU, torch.float32)


def test_weights_from_bin_files_and_from_the_index_only(tiny_llama_dir, tmp_path):
    """A folder of ``pytorch_model.bin`` loads as its safetensors twin does; a sharded folder reads the files its
    index names, not a stray ``*.safetensors`` beside them."""
    import shutil

    from safetensors.torch import load_file, save_file

    want = load(str(tiny_llama_dir), CPU, torch.float32).model.state_dict()
    binonly = tmp_path / "binonly"
    shutil.copytree(tiny_llama_dir, binonly)
    torch.save(load_file(binonly / "model.safetensors"), binonly / "pytorch_model.bin")
    (binonly / "model.safetensors").unlink()
    got = load(str(binonly), CPU, torch.float32).model.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    (binonly / "pytorch_model.bin").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"cannot read .*pytorch_model\.bin"):
        load(str(binonly), CPU, torch.float32)
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_llama_dir, sharded)
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00001.safetensors")
    names = load_file(sharded / "model-00001-of-00001.safetensors")
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in names}}))
    save_file({"stray.weight": torch.zeros(2)}, sharded / "old-export.safetensors")
    got = load(str(sharded), CPU, torch.float32).model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_fused_projections_same_logits_same_bytes_and_unfused_when_replaced():
    """Engine fuses q/k/v and gate/up of plain linears into one GEMM each: the logits stay (float32,
    CPU), the linears keep views of the fused weight (no extra bytes), and mounting a SpenseLinear in
    place of a projection drops that block's fusion."""
    from spense.engine import measure
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=0)
    m.setup_caches(2, 128)
    idx = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    pos = torch.arange(5)
    ref = m(idx, pos, 128)
    before = measure.weight_bytes(m)
    assert m.fuse_projections() == 2 * len(m.model.layers)
    att, mlp = m.model.layers[0].self_attn, m.model.layers[0].mlp
    assert att.q_proj.weight.data_ptr() == att.qkv_weight.data_ptr()
    assert mlp.up_proj.weight.data_ptr() == mlp.gate_up_weight[mlp.gate_proj.out_features:].data_ptr()
    assert measure.weight_bytes(m) == before
    assert torch.allclose(m(idx, pos, 128), ref, atol=1e-5, rtol=1e-5)
    sparsify(m, 0.25, tie=False)  # every projection becomes a SpenseLinear: no fused GEMM may survive
    assert all(b.self_attn.qkv_weight is None and b.mlp.gate_up_weight is None for b in m.model.layers)
    same = lambda *ls: all(torch.equal(l.layout.dense_idx, ls[0].layout.dense_idx) for l in ls)  # noqa: E731
    expect = sum(int(same(b.self_attn.q_proj, b.self_attn.k_proj, b.self_attn.v_proj))
                 + int(same(b.mlp.gate_proj, b.mlp.up_proj)) for b in m.model.layers)
    assert m.fuse_projections() == expect  # Spense projections fuse only over the same dense columns


def test_tied_spense_projections_fuse_into_one_layer():
    """sparsify(tie=True): q/k/v and gate/up share their dense columns and run as one SpenseLinear
    each (spense.runtime.fuse); the logits equal the unfused layers', the members hold row views (no
    extra bytes), unfusing restores three / two layers, and a member can be replaced again."""
    from spense.engine import measure
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=0)
    m.setup_caches(2, 128)
    idx = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    pos = torch.arange(5)
    sparsify(m, 0.25, block=16)
    att, mlp = m.model.layers[0].self_attn, m.model.layers[0].mlp
    assert isinstance(att.qkv_fused, SpenseLinear) and isinstance(mlp.gate_up_fused, SpenseLinear)
    assert torch.equal(att.q_proj.layout.dense_idx, att.v_proj.layout.dense_idx)
    assert att.k_proj.values.data_ptr() == att.qkv_fused.values[att.q_proj.out_features:].data_ptr()
    fused_logits = m(idx, pos, 128)
    fused_bytes = measure.weight_bytes(m)
    fused_idx = sum(t.numel() * t.element_size() for b in m.model.layers for f in (b.self_attn.qkv_fused, b.mlp.gate_up_fused)
                    for t in (f.sparse_idx, f.dense_idx))
    for blk in m.model.layers:
        blk.self_attn.unfuse()
        blk.mlp.unfuse()
    assert att.qkv_fused is None and not att.q_proj._fused
    assert torch.equal(m(idx, pos, 128), fused_logits)
    assert measure.weight_bytes(m)[1] == fused_bytes[1] - fused_idx  # the same rows, counted once
    assert m.fuse_projections() == 2 * len(m.model.layers)
    from spense.engine.load import _mount

    assert not any("qkv_fused" in k or "gate_up_fused" in k for k in m.state_dict())  # rows saved once
    _mount(m, "model.layers.0.self_attn.o_proj", torch.nn.Linear(att.o_proj.in_features, 128, bias=False))
    assert att.qkv_fused is not None  # replacing a layer outside the group keeps the fusion
    _mount(m, "model.layers.0.self_attn.k_proj", torch.nn.Linear(128, att.k_proj.out_features, bias=False))
    assert att.qkv_fused is None and not att.q_proj._fused and mlp.gate_up_fused is not None
    m(idx, pos, 128)  # the block runs three projections again


def test_matmul_and_split_attention_match_sdpa_with_left_padding():
    """``set_attention("matmul")`` (two batched GEMMs, float32 softmax) and ``"split"`` (the decode op,
    here its CPU reference; prefill stays SDPA) give SDPA's logits (float32, CPU), left padding
    included, in prefill and in a decode step; an unknown choice is refused."""
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=1)
    m.setup_caches(2, 128)
    idx = torch.tensor([[0, 0, 4, 1, 5], [9, 2, 6, 5, 3]])
    start = torch.tensor([2, 0])
    ref = m(idx, torch.arange(5), 128, start)
    ref_step = m(idx[:, :1], torch.tensor([5]), 128, start)
    for impl in ("matmul", "split"):
        m.set_attention(impl)
        assert torch.allclose(m(idx, torch.arange(5), 128, start), ref, atol=1e-5, rtol=1e-5)
        assert torch.allclose(m(idx[:, :1], torch.tensor([5]), 128, start), ref_step, atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="attention must be"):
        m.set_attention("flash")
    with pytest.raises(InputError, match="attention must be one of"):
        Engine(m, 1, 128, attention="flash")


def test_graph_kind_chosen_refused_by_name_and_none_on_cpu(monkeypatch):
    """``graph`` (or ``$SPENSE_GRAPH``) is ``tree`` or ``plain``; anything else is refused by name, and on the CPU
    nothing is graphed whichever is asked for."""
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=1)
    with pytest.raises(InputError, match="graph must be one of tree, plain, got 'trees'"):
        Engine(m, 1, 128, graph="trees")
    monkeypatch.setenv("SPENSE_GRAPH", "cudagraph")
    with pytest.raises(InputError, match="got 'cudagraph'"):
        Engine(m, 1, 128)
    monkeypatch.setenv("SPENSE_GRAPH", "plain")
    eng = Engine(m, 1, 128)
    assert eng.graph is None and not eng.graphs and eng._pool is None and not eng._plain


def test_prefill_runs_the_lm_head_on_the_last_position_only(monkeypatch):
    """A prefill's logits are the full forward's last row, and the LM head reads one row a prompt (B T V float32
    logits would be 34 GB for 8 prompts of 4,096 tokens at a 262,144-word vocabulary)."""
    import spense.engine.model as model_mod
    from spense.engine.generate import prefill_step
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=2)
    m.setup_caches(2, 128)
    ids, pos, start = torch.tensor([[0, 3, 1, 4, 1], [5, 9, 2, 6, 5]]), torch.arange(5), torch.tensor([1, 0])
    with torch.inference_mode():
        full = m(ids, pos, 128, start)[:, -1]
        rows, real = [], model_mod.linear
        monkeypatch.setattr(model_mod, "linear", lambda mod, x: (rows.append(x.shape[:-1]) if mod is m.lm_head
                                                                  else None) or real(mod, x))
        tok, logits = prefill_step(m, ids, pos, start, 128, 0.0, 1.0)
    assert rows == [(2, 1)] and torch.allclose(logits, full, atol=1e-5) and tok.flatten().tolist() == \
        full.argmax(-1).tolist()


def test_stream_one_step_ahead_same_tokens_and_eos():
    """Generation queues step i+1 before reading step i: the tokens equal a plain step-by-step loop,
    and an eos met at step k stops the output there (the step queued ahead is dropped)."""
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=2)
    eng = Engine(m, 1, 128)
    prompt = [[3, 1, 4, 1, 5, 9]]
    nxt, _, start, T = eng.prefill(prompt)
    loop = [int(nxt[0, 0])]
    for i in range(7):
        nxt, _ = eng.step(nxt, T + i, start)
        loop.append(int(nxt[0, 0]))
    g = eng.generate(prompt, 8)
    assert g.tokens == [loop] and g.steps == 7
    k = next(i for i in range(1, 8) if loop[i] not in loop[:i])  # the first index where a new token shows
    g = eng.generate(prompt, 8, eos=loop[k])
    assert g.tokens == [loop[:k + 1]] and g.stopped == "eos"
    assert eng.generate(prompt, 8, eos=loop[0]).tokens == [loop[:1]]
    other = max(loop) + 1  # never generated here
    g = eng.generate(prompt, 8, eos=[other, loop[k]])  # several stop ids (Llama 3 instruct: <|eot_id|> too)
    assert g.tokens == [loop[:k + 1]] and g.stopped == "eos"
    assert eng.generate(prompt, 8, eos=[]).tokens == [loop]


def test_eos_ids_join_the_tokenizers_eos_and_the_generation_configs(tmp_path):
    from types import SimpleNamespace

    from spense.cli.generate import _eos_ids

    tok = SimpleNamespace(eos_token_id=2)
    assert _eos_ids(tmp_path, tok) == [2]
    (tmp_path / "generation_config.json").write_text('{"eos_token_id": [128001, 128009, 2]}')
    assert _eos_ids(tmp_path, tok) == [2, 128001, 128009]
    (tmp_path / "generation_config.json").write_text('{"eos_token_id": 7}')
    assert _eos_ids(tmp_path, SimpleNamespace(eos_token_id=None)) == [7]
    for broken in ('{"eos_token_id": [1', "[3]"):  # cut short: said; valid JSON of another shape: nothing to add
        (tmp_path / "generation_config.json").write_text(broken)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert _eos_ids(tmp_path, tok) == [2]
        said = [str(w.message) for w in seen]
        assert (len(said) == 1 and "is not readable JSON" in said[0] and "eos_token_id is ignored" in said[0]) \
            if broken.startswith("{") else said == []


def test_fp8_dense_projections_fuse_same_logits_same_bytes():
    """The FP8 dense baseline fuses q/k/v and gate/up too (weight rows and their scales concatenate):
    same logits (CPU reference kind), same bytes, members hold views, and the fused layer is what runs."""
    from spense.engine import measure
    from spense.engine.load import random_model
    from spense.engine.sparsify import fp8_dense
    from spense.runtime.fp8 import Fp8Linear

    m = fp8_dense(random_model("qwen3-tiny", CPU, torch.float32, seed=3))
    m.setup_caches(1, 128)
    idx, pos = torch.tensor([[3, 1, 4, 1, 5]]), torch.arange(5)
    ref, before = m(idx, pos, 128), measure.weight_bytes(m)
    assert m.fuse_projections() == 2 * len(m.model.layers)
    att, mlp = m.model.layers[0].self_attn, m.model.layers[0].mlp
    assert isinstance(att.qkv_fused, Fp8Linear) and isinstance(mlp.gate_up_fused, Fp8Linear)
    assert att.k_proj.weight.data_ptr() == att.qkv_fused.weight[att.q_proj.out_features:].data_ptr()
    assert att.v_proj._fused and att.qkv_fused.out_features == sum(
        p.out_features for p in (att.q_proj, att.k_proj, att.v_proj))
    assert measure.weight_bytes(m) == before
    assert torch.allclose(m(idx, pos, 128), ref, atol=1e-5, rtol=1e-5)
    assert not any("qkv_fused" in k or "gate_up_fused" in k for k in m.state_dict())


def test_compiled_decode_step_with_split_attention_cpu():
    """torch.compile (Inductor, CPU) of a decode step through ``spense::decode_attention``: the same logits
    as the eager step, and no warning of Dynamo's (a switch read through a cached function in the step gave one)."""
    from spense.engine.load import random_model

    m = random_model("qwen3-tiny", CPU, torch.float32, seed=4)
    m.setup_caches(1, 128)
    m.set_attention("split")
    with torch.inference_mode(), warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m(torch.tensor([[3, 1, 4, 1, 5]]), torch.arange(5), 128)  # prefill (SDPA) fills the cache
        args = (m, torch.tensor([[9]]), torch.tensor([5]), torch.zeros(1, dtype=torch.long), 128, 0.0, 1.0)
        ref = decode_step(*args)[1]
        torch._dynamo.reset()
        got = torch.compile(decode_step, fullgraph=True, dynamic=False)(*args)[1]
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)
    assert not [str(r.message) for r in rec if "Dynamo" in str(r.message)], [str(r.message) for r in rec]


def test_default_attention_split_on_cuda_where_the_head_dim_suits():
    from spense.engine.generate import default_attention

    m = load("qwen3-tiny", torch.device("cpu"), torch.float32).model
    hd = m.args.head_dim
    assert hd >= 16 and not hd & (hd - 1)
    assert default_attention(m, cuda=True, compiled=True) == "split"
    assert default_attention(m, cuda=False, compiled=False) == "auto"
    m.args.head_dim = 80  # not a power of two: the split kernel does not take it
    assert default_attention(m, cuda=True, compiled=True) == "math"
    assert default_attention(m, cuda=True, compiled=False) == "auto"


def test_argmax_last_is_the_first_maximum_eager_and_compiled():
    """The two-stage argmax equals ``argmax(-1)`` (ties: the first index) for widths that are and are
    not multiples of the slice count, eagerly and under torch.compile."""
    from spense.engine.generate import argmax_last

    gen = torch.Generator().manual_seed(0)
    compiled = torch.compile(argmax_last, fullgraph=True, dynamic=False)
    for B, V in [(1, 151936), (3, 1000), (2, 256), (4, 100)]:
        x = torch.randint(0, 5, (B, V), generator=gen).to(torch.bfloat16)  # many ties
        x[0, -1] = 9  # a maximum in the padded last slice
        if B > 1:
            x[1, 7] = x[1, 200 % V] = 9  # tied maxima: the first wins
        want = x.argmax(-1, keepdim=True)
        assert torch.equal(argmax_last(x), want)
        assert torch.equal(compiled(x), want)
        assert torch.equal(argmax_last(x.float() / 3), (x.float() / 3).argmax(-1, keepdim=True))


def test_pdl_only_on_cuda_sm90_unless_turned_off(monkeypatch):
    """Inductor's programmatic dependent launch is asked for on CUDA sm_90+ only (the capability faked
    here), never under SPENSE_PDL=0, and an engine that does not compile never records it."""
    import torch._inductor.config as ic

    from spense.engine.generate import pdl_wanted

    monkeypatch.delenv("SPENSE_PDL", raising=False)
    monkeypatch.setattr(torch.version, "hip", None)
    cuda = torch.device("cuda")
    assert not pdl_wanted(CPU)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    assert pdl_wanted(cuda) == hasattr(ic.triton, "enable_pdl")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 0))
    assert not pdl_wanted(cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    monkeypatch.setenv("SPENSE_PDL", "0")
    assert not pdl_wanted(cuda)
    monkeypatch.delenv("SPENSE_PDL")
    eng = Engine(load("qwen3-tiny", CPU, torch.float32).model, 1, 128)
    assert eng.pdl is False


@pytest.mark.parametrize("parts", ["1", "0"])
def test_norms_read_their_input_as_a_sum_of_their_own(parts, monkeypatch, request):
    """residual_sum under ``SPENSE_NORM_PARTS=1``: every RMSNorm after the first reads ``d + r``, an add node apart
    from the residual ``r + d``, in the graph Inductor lowers (post-grad), so that a planned Spense layer's permuted
    operand gathers from the sum's inputs; under ``0`` (the default) the norms read the residual itself.  The logits
    are the same."""
    from spense.engine import model as mdl

    monkeypatch.setenv("SPENSE_NORM_PARTS", parts)
    mdl.norm_parts.cache_clear()
    request.addfinalizer(mdl.norm_parts.cache_clear)
    m = load("qwen3-tiny", CPU, torch.float32).model
    m.setup_caches(1, 128)
    m.set_attention("split")
    adds = []

    def grab(g):  # the (M, dim) tensor sums: residuals and, with parts, the norms' own
        adds.extend(n for n in g.nodes if n.target == torch.ops.aten.add.Tensor
                    and all(isinstance(a, torch.fx.Node) for a in n.args[:2])
                    and tuple(n.meta["val"].shape) == (1, 1, m.args.dim))

    args = (m, torch.tensor([[3]]), torch.tensor([5]), torch.zeros(1, dtype=torch.long), 128, 0.0, 1.0)
    torch._dynamo.reset()
    with torch.no_grad(), warnings.catch_warnings(), \
            torch._inductor.config.patch(fx_graph_cache=False, post_grad_custom_post_pass=grab):
        warnings.simplefilter("ignore")
        got = torch.compile(decode_step, fullgraph=True)(*args)[1]
        ref = decode_step(*args)[1]
    L = m.args.n_layer
    residuals = 2 * L  # r + d in every block but the first, x + a in each, the final one
    assert len(adds) == residuals + (2 * L - 1 if parts == "1" else 0)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)
