"""What the engine reads from a config (:mod:`spense.engine.args`), and the architectures that brought each part:
Gemma 3 (its norms, scale, soft-capped logits, sliding layers with their own RoPE base) and a sliding-window
Mistral, each against transformers' own tokens and logits; what the engine lacks is refused by name."""

from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from conftest import prune_and_pack
from spense.cli import app
from spense.engine import Engine, load
from spense.engine.args import ModelArgs, rope_tables
from spense.errors import InputError, UnsupportedModel

CPU = torch.device("cpu")
PROMPTS = [[5, 7, 9, 11, 13, 17, 19, 23, 29, 31], [3, 4], [8]]  # longer than the sliding windows, and shorter


def _hf_greedy(hf, prompt, n):
    ids = torch.tensor([prompt])
    return hf.generate(ids, max_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(ids),
                       pad_token_id=0)[0, len(prompt):].tolist()


def _gemma3_config(vocab, **kw):
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(**{**dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                      max_position_embeddings=256, sliding_window=6, pad_token_id=0,
                                      layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
                               **kw})


def make_gemma3(d, tok, **kw):
    """A tiny Gemma 3 saved to ``d`` with the tokenizer ``tok``; its norm weights random (not Gemma's zeros: (1 + w)
    is then exercised)."""
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    hf = Gemma3ForCausalLM(_gemma3_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                          **kw)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 1:
                p.normal_(0.0, 0.3)
    hf.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_tok(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir, local_files_only=True)


@pytest.fixture(scope="module")
def gemma3_dir(tmp_path_factory, tiny_tok):
    """A softmax scale other than 1 / sqrt(head_dim), soft-capped logits."""
    return make_gemma3(tmp_path_factory.mktemp("m") / "gemma3", tiny_tok, query_pre_attn_scalar=24,
                       final_logit_softcapping=30.0)


@pytest.fixture(scope="module")
def gemma3_plain_scale_dir(tmp_path_factory, tiny_tok):
    """Gemma's usual query_pre_attn_scalar = head_dim (1 / sqrt(head_dim)): decode steps may take the split-KV op."""
    return make_gemma3(tmp_path_factory.mktemp("m") / "gemma3s", tiny_tok, query_pre_attn_scalar=16,
                       max_position_embeddings=512)


def test_gemma3_config_in_both_forms():
    """transformers 5's ``rope_parameters`` per layer type, and the older ``rope_theta`` / ``rope_local_base_freq`` /
    ``rope_scaling`` with ``sliding_window_pattern`` (no ``layer_types``)."""
    a = ModelArgs.from_hf_config(_gemma3_config(300, query_pre_attn_scalar=24, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}))
    assert a.gemma and a.qk_norm and a.tie_embeddings and a.act == "gelu_tanh"
    assert a.sliding == (True, False, True) and a.window == 6 and a.attn_scale == 24 ** -0.5
    assert (a.rope_theta, a.rope_scaling, a.rope_theta_local, a.rope_scaling_local) == (1e6, ("linear", 8.0), 1e4, ())
    full, local = rope_tables(a)
    torch.testing.assert_close(full, 1e6 ** -(torch.arange(0, 16, 2) / 16) / 8)
    torch.testing.assert_close(local, 1e4 ** -(torch.arange(0, 16, 2) / 16))
    old = SimpleNamespace(model_type="gemma3_text", vocab_size=300, hidden_size=64, intermediate_size=128,
                          num_hidden_layers=7, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                          rms_norm_eps=1e-6, max_position_embeddings=512, rope_theta=1e6, rope_local_base_freq=1e4,
                          rope_scaling={"rope_type": "linear", "factor": 4.0}, sliding_window=64,
                          sliding_window_pattern=3, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16,
                          tie_word_embeddings=True)
    b = ModelArgs.from_hf_config(old)
    assert b.sliding == (True, True, False, True, True, False, True) and b.window == 64
    assert (b.rope_theta, b.rope_scaling, b.rope_theta_local) == (1e6, ("linear", 4.0), 1e4)
    assert b.attn_scale == 0.25  # = 1 / sqrt(head_dim): the attention keeps its default scale (and kernel)


def test_sliding_layers_of_mistral_and_qwen():
    from transformers import MistralConfig, Qwen3Config

    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=300)
    assert ModelArgs.from_hf_config(MistralConfig(**small, sliding_window=32)).sliding == (True,) * 4
    assert ModelArgs.from_hf_config(MistralConfig(**small, sliding_window=None)).sliding == ()
    q = ModelArgs.from_hf_config(Qwen3Config(**small))
    assert (q.sliding, q.window, q.act, q.gemma) == ((), 0, "silu", False)
    q = ModelArgs.from_hf_config(Qwen3Config(**small, use_sliding_window=True, sliding_window=16, max_window_layers=2))
    assert q.sliding == (False, False, True, True) and q.window == 16
    from spense.engine.args import sliding_layers

    old = SimpleNamespace(num_hidden_layers=4, sliding_window=16, use_sliding_window=True, max_window_layers=3)
    assert sliding_layers("qwen2", old) == ((False, False, False, True), 16)  # a config from before layer_types


def test_what_the_engine_lacks_is_refused_by_name():
    from transformers import LlamaConfig

    with pytest.raises(UnsupportedModel, match="gemma3_text: bidirectional attention is not computed"):
        ModelArgs.from_hf_config(_gemma3_config(300, use_bidirectional_attention=True))
    # transformers' Gemma 3 reads no attn_logit_softcapping in its forward: neither does the engine, nor refuses it
    assert ModelArgs.from_hf_config(_gemma3_config(300, attn_logit_softcapping=50.0)).gemma
    with pytest.raises(UnsupportedModel, match="activation 'relu' is not computed by the engine") as e:
        ModelArgs.from_hf_config(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                             num_attention_heads=4, vocab_size=300, hidden_act="relu"))
    assert e.value.what == "llama with activation 'relu'"
    odd = SimpleNamespace(num_hidden_layers=2, sliding_window=8, layer_types=["chunked_attention", "full_attention"])
    from spense.engine.args import sliding_layers

    with pytest.raises(UnsupportedModel, match="layer type 'chunked_attention'"):
        sliding_layers("qwen3", odd)
    with pytest.raises(InputError, match="sliding-window layers without a sliding_window"):
        sliding_layers("qwen3", SimpleNamespace(num_hidden_layers=1, sliding_window=None,
                                                layer_types=["sliding_attention"]))
    with pytest.raises(InputError, match="layer_types names 1 layers of its 2"):
        sliding_layers("gemma3_text", SimpleNamespace(num_hidden_layers=2, sliding_window=8,
                                                      layer_types=["sliding_attention"]))


@pytest.mark.parametrize("plain_scale", [False, True])
@pytest.mark.parametrize("attention", ["auto", "matmul", "split"])
def test_gemma3_equals_transformers(gemma3_dir, gemma3_plain_scale_dir, attention, plain_scale, monkeypatch):
    """Logits within float32 rounding of transformers' over a prompt past the window; greedy tokens batched and
    left-padded equal transformers' one by one, through SDPA, the two GEMMs and the split-KV kernel's reference path
    (decode steps take it where the scale is 1 / sqrt(D); else SDPA with the model's scale)."""
    from transformers import AutoModelForCausalLM

    import spense.engine.model as model_mod

    d = gemma3_plain_scale_dir if plain_scale else gemma3_dir
    hf = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, local_files_only=True).eval()
    m = load(str(d), CPU, torch.float32).model
    ids = torch.tensor([PROMPTS[0] + [37, 41]])
    with torch.no_grad():
        m.setup_caches(1, 128)
        torch.testing.assert_close(m(ids, torch.arange(12), 128), hf(ids).logits, atol=2e-5, rtol=1e-5)
    calls = []
    real = model_mod.decode_attention
    monkeypatch.setattr(model_mod, "decode_attention", lambda *a: calls.append(1) or real(*a))
    eng = Engine(m, 3, 200, attention=attention)
    assert eng.generate(PROMPTS, 12).tokens == [_hf_greedy(hf, p, 12) for p in PROMPTS]
    assert bool(calls) == (attention == "split" and plain_scale)


@pytest.fixture(scope="module")
def mistral_dir(tmp_path_factory):
    """A tiny Mistral whose every layer slides (window 4), with positions for 300 tokens past the prompt."""
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    cfg = MistralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=300, max_position_embeddings=512, sliding_window=4)
    d = tmp_path_factory.mktemp("m") / "mistral"
    MistralForCausalLM(cfg).eval().save_pretrained(d)
    return d


@pytest.mark.parametrize("attention", ["auto", "split"])
def test_sliding_window_mistral_equals_transformers(mistral_dir, attention, monkeypatch):
    """Greedy tokens batched are transformers' own; with "split" the decode steps take the fused op (Llama's scale),
    and past a length bucket's block plus the window it reads and writes the caches from :func:`window_start` on."""
    from transformers import AutoModelForCausalLM

    import spense.engine.model as model_mod

    hf = AutoModelForCausalLM.from_pretrained(mistral_dir, dtype=torch.float32).eval()
    los, real = [], model_mod.decode_attention_fused
    monkeypatch.setattr(model_mod, "decode_attention_fused",
                        lambda q, k, v, qw, kw, cos, sin, kc, *a: los.append(kc.storage_offset() // kc.stride(2))
                        or real(q, k, v, qw, kw, cos, sin, kc, *a))
    eng = Engine(load(str(mistral_dir), CPU, torch.float32).model, 3, 400, attention=attention)
    assert eng.model.args.sliding == (True, True)
    n = 270 if attention == "split" else 10
    assert eng.generate(PROMPTS[:2], n).tokens == [_hf_greedy(hf, p, n) for p in PROMPTS[:2]]
    assert sorted(set(los)) == ([0, 128] if attention == "split" else [])  # slots 128.. in the bucket of 384


def test_compiled_fused_step_of_a_sliding_layer_writes_its_window_view(mistral_dir):
    """torch.compile (Inductor, CPU) of a decode step whose fused op takes the caches from slot 128 on (a view):
    the eager step's logits and caches."""
    from spense.engine.generate import decode_step

    def step(compiled):
        m = load(str(mistral_dir), CPU, torch.float32).model
        m.setup_caches(1, 384)
        m.set_attention("split")
        assert m.model.layers[0].self_attn.fused
        with torch.inference_mode():
            m(torch.arange(300)[None] % 290 + 3, torch.arange(300), 384)  # prefill (SDPA) fills 300 slots
            torch._dynamo.reset()
            f = torch.compile(decode_step, fullgraph=True, dynamic=False) if compiled else decode_step
            logits = f(m, torch.tensor([[9]]), torch.tensor([300]), torch.zeros(1, dtype=torch.long), 384, 0.0,
                       1.0)[1]
        return logits, [b.self_attn.kv_cache.k.clone() for b in m.model.layers]

    (ref, kr), (got, kg) = step(False), step(True)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(kg, kr))
    assert all(a[:, :, 300].abs().sum() > 0 and a[:, :, 301:].abs().sum() == 0 for a in kg)  # slot 300 written


def test_generate_cli_runs_gemma3_on_the_engine(gemma3_dir, tiny_text_file, tmp_path):
    """``spense generate`` on the model, its pruned checkpoint and that checkpoint packed runs the engine, not
    transformers (no warning); the engine's greedy tokens of each are transformers' on the same weights."""
    from transformers import AutoModelForCausalLM

    run = CliRunner().invoke
    out, packed = prune_and_pack(gemma3_dir, tiny_text_file, tmp_path)
    for src, ref in ((gemma3_dir, gemma3_dir), (out, out), (packed, out)):
        g = run(app, ["generate", str(src), "--prompt", "The game", "-n", "6", "--device", "cpu"])
        assert g.exit_code == 0 and "6 tokens" in g.output and "transformers" not in g.output, (src, g.output)
        hf = AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32, local_files_only=True).eval()
        loaded = load(str(src), CPU, torch.float32)
        assert loaded.source == {gemma3_dir: "hf", out: "spense", packed: "spense-packed"}[src]
        assert Engine(loaded.model, 3, 64).generate(PROMPTS, 6).tokens == [_hf_greedy(hf, p, 6) for p in PROMPTS]


@pytest.mark.parametrize("attention", ["auto", "matmul", "split"])
def test_sliding_layers_read_only_their_window_at_decode(gemma3_plain_scale_dir, attention, monkeypatch):
    """Past a length bucket's block plus the window, a sliding layer's decode step reads only the slots from
    :func:`window_start` on: 300 greedy tokens (slots up to 310, window 6) are still transformers' own."""
    from transformers import AutoModelForCausalLM

    import spense.engine.model as model_mod

    hf = AutoModelForCausalLM.from_pretrained(gemma3_plain_scale_dir, dtype=torch.float32,
                                              local_files_only=True).eval()
    starts = []
    real = model_mod.window_start
    monkeypatch.setattr(model_mod, "window_start", lambda *a: starts.append(real(*a)) or starts[-1])
    eng = Engine(load(str(gemma3_plain_scale_dir), CPU, torch.float32).model, 2, 400, attention=attention)
    got = eng.generate(PROMPTS[:2], 300).tokens
    assert got == [_hf_greedy(hf, p, 300) for p in PROMPTS[:2]]
    assert sorted(set(starts)) == [0, 128]  # slots 0.. in the buckets of 128 and 256; 128.. in that of 384
    assert model_mod.window_start(384, 6) == 128 and model_mod.window_start(384, 200) == 0
    assert model_mod.window_start(1024, 512) == 384  # pos >= 896: keys from 385 on
