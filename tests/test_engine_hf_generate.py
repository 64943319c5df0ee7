"""Generation through transformers for an architecture the engine does not compute (a tiny Gemma 2 made here):
the model's greedy tokens, batched and left-padded; stop ids; none of the model's sampling defaults; Ctrl-C; and
``spense generate`` on the model, its pruned checkpoint and that checkpoint packed."""

import warnings

import pytest
import torch
from typer.testing import CliRunner

from conftest import prune_and_pack
from spense.cli import app
from spense.engine import load
from spense.engine.hf_generate import HFGenerator
from spense.errors import InputError, UnsupportedModel

CPU = torch.device("cpu")
PROMPTS = [[5, 7, 9, 11, 13, 17, 19, 23, 29, 31], [3, 4], [8]]  # longer than the sliding window, and shorter


def _hf_greedy(hf, prompt, n):
    ids = torch.tensor([prompt], device=hf.device)
    return hf.generate(ids, max_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(ids),
                       pad_token_id=0, repetition_penalty=1.0)[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory, tiny_llama_dir):
    from transformers import AutoTokenizer, Gemma2Config, Gemma2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir, local_files_only=True)
    torch.manual_seed(0)
    # Gemma 2's soft-capped attention logits are what the engine lacks (it computes Gemma 3)
    cfg = Gemma2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       sliding_window=8, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=0)
    d = tmp_path_factory.mktemp("m") / "gemma2"
    Gemma2ForCausalLM(cfg).eval().save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def gemma(gemma_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gemma_dir, dtype=torch.float32, local_files_only=True).eval()


def test_the_engine_refuses_it_by_name(gemma_dir):
    with pytest.raises(UnsupportedModel, match="unsupported architecture 'gemma2'.*generate runs it through "
                                               "transformers"):
        load(str(gemma_dir), CPU, torch.float32)


def test_greedy_batched_left_padded_equals_one_by_one(gemma):
    want = [_hf_greedy(gemma, p, 12) for p in PROMPTS]
    g = HFGenerator(gemma, 0).generate(PROMPTS, 12)
    assert g.tokens == want and g.stopped == "length" and g.steps == 11
    assert g.prefill_s > 0 and g.decode_s > 0
    assert g.tokens_per_s == pytest.approx(3 * 11 / g.decode_s)  # the first token of each row is the prefill's
    one = HFGenerator(gemma, 0).generate([PROMPTS[0]], 12, on_tokens=(seen := []).append)
    assert one.tokens == [want[0]] and [s[0] for s in seen] == want[0]
    # nucleus sampling with a mass this small keeps the most likely token only: greedy again
    assert HFGenerator(gemma, 0).generate(PROMPTS, 12, temperature=1.0, top_p=1e-6).tokens == want


def test_stop_ids_and_the_models_own_sampling_defaults(gemma):
    from transformers import GenerationConfig

    """A row stops at its first stop id (kept); every row stopped: ``"eos"``.  The model's generation_config does
    not change what the caller asked for (transformers fills what a call leaves unset from it)."""
    want = [_hf_greedy(gemma, p, 8) for p in PROMPTS]
    stop = want[0][2]
    g = HFGenerator(gemma, 0).generate(PROMPTS, 8, eos=[stop])
    for row, w in zip(g.tokens, want):
        assert row == (w[:w.index(stop) + 1] if stop in w else w)
    own = gemma.generation_config
    try:  # sampling on, top-k 1, a repetition penalty, no repeated bigram, and an EOS of its own
        gemma.generation_config = GenerationConfig(do_sample=True, top_k=1, top_p=0.5, repetition_penalty=5.0,
                                                   no_repeat_ngram_size=1, eos_token_id=want[0][0])
        g = HFGenerator(gemma, 0).generate(PROMPTS, 8)
        assert g.tokens == want and gemma.generation_config.repetition_penalty == 5.0
    finally:
        gemma.generation_config = own
    w = want[0]
    everyone = HFGenerator(gemma, 0).generate([PROMPTS[0]], 8, eos=w[1])
    assert everyone.tokens == [w[:w.index(w[1]) + 1]] and everyone.stopped == "eos"


def test_ctrl_c_keeps_the_tokens_so_far(gemma, monkeypatch):
    real, calls = type(gemma).forward, {"n": 0}

    def forward(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # prefill, then two decode steps
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(type(gemma), "forward", forward)
    g = HFGenerator(gemma, 0).generate([PROMPTS[0]], 10)
    assert g.stopped == "interrupted" and len(g.tokens[0]) == 3


@pytest.fixture(scope="module")
def pruned(gemma_dir, tiny_text_file, tmp_path_factory):
    """``(checkpoint, the same packed)``: the tiny Gemma pruned by ``spense prune`` (Spense, 25 %)."""
    return prune_and_pack(gemma_dir, tiny_text_file, tmp_path_factory.mktemp("pruned"))


def test_generate_cli_on_the_model_its_checkpoint_and_packed(gemma_dir, pruned):
    from transformers import AutoModelForCausalLM

    from spense.data import load_tokenizer

    run = CliRunner().invoke
    out, packed = pruned
    tok = load_tokenizer(gemma_dir)
    hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, local_files_only=True).eval()
    want = tok.decode(_hf_greedy(hf, tok.encode("The game"), 6), skip_special_tokens=True)
    for src in (gemma_dir, out, packed):
        g = run(app, ["generate", str(src), "--prompt", "The game", "-n", "6", "--device", "cpu"])
        assert g.exit_code == 0 and "6 tokens" in g.output and "tokens/s" in g.output, g.output
        warned = [ln for ln in g.output.splitlines() if "the engine does not run gemma2" in ln]
        assert len(warned) == 1 and "transformers (eager, on CPU" in warned[0], g.output
        if src != gemma_dir:  # the pruned model's greedy continuation, packed or not
            assert ("The game" + want) in g.output, (src, g.output)
    # a prompt longer than the model's positions keeps its last tokens, with a warning
    long = " ".join(["word"] * 400)
    g = run(app, ["generate", str(gemma_dir), "--prompt", long, "-n", "4", "--device", "cpu"])
    assert g.exit_code == 0 and "exceeds the model's 256 positions: keeping the last 252 prompt tokens" in g.output
    # "~" as the user's shell would have left it (a quoted path): the packed checkpoint under $HOME
    home = packed.parent / "home"
    home.mkdir(exist_ok=True)
    (home / "pk").symlink_to(packed)
    g = run(app, ["generate", "~/pk", "--prompt", "The game", "-n", "2", "--device", "cpu"], env={"HOME": str(home)})
    assert g.exit_code == 0 and "2 tokens" in g.output, g.output


def test_rope_scaling_the_engine_lacks_runs_through_transformers_and_says_so(tiny_llama_dir, tmp_path):
    import json
    import shutil

    d = tmp_path / "yarn"
    shutil.copytree(tiny_llama_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["rope_scaling"] = cfg["rope_parameters"] = {"rope_type": "yarn", "factor": 2.0, "rope_theta": 10000.0,
                                                     "original_max_position_embeddings": 128}
    (d / "config.json").write_text(json.dumps(cfg))
    g = CliRunner().invoke(app, ["generate", str(d), "--prompt", "The game", "-n", "3", "--device", "cpu"])
    assert g.exit_code == 0 and "3 tokens" in g.output, g.output
    assert "the engine does not run llama with RoPE scaling 'yarn': generating through transformers" in g.output


def test_a_truncated_prompt_keeps_its_bos():
    from spense.cli.generate import _fit

    with pytest.warns(RuntimeWarning, match="keeping its BOS and the last 251 prompt tokens"):
        ids, want = _fit([[1] + list(range(10, 400)), [1, 5, 6]], 4, None, 256, bos=1)
    assert want == 256 and ids[0] == [1] + list(range(149, 400)) and ids[1] == [1, 5, 6]
    with pytest.warns(RuntimeWarning, match="keeping the last 252 prompt tokens"):  # no BOS: the last tokens
        ids, _ = _fit([list(range(10, 400))], 4, None, 256, bos=1)
    assert ids == [list(range(148, 400))]
    with pytest.raises(InputError, match="do not fit --max-len 256"), warnings.catch_warnings():
        warnings.simplefilter("error")  # the --max-len warning does not come before the refusal
        _fit([list(range(300))], 4, 9999, 256)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_packed_checkpoint_runs_inside_transformers(gemma, pruned):
    """On a GPU: the dense model's greedy tokens (bf16) are transformers' own, and the packed checkpoint (its
    SpenseLinear kernels inside transformers' forward) generates through the CLI, with no CPU warning."""
    dev = torch.device("cuda")
    m = gemma.to(dev, torch.bfloat16)
    try:
        want = [_hf_greedy(m, p, 8) for p in PROMPTS]
        assert [HFGenerator(m, 0).generate([p], 8).tokens[0] for p in PROMPTS] == want
    finally:
        gemma.to("cpu", torch.float32)
    g = CliRunner().invoke(app, ["generate", str(pruned[1]), "--prompt", "The game", "-n", "6", "--device", "cuda"])
    assert g.exit_code == 0 and "6 tokens" in g.output, g.output
    assert "the engine does not run gemma2: generating through transformers (eager; " in g.output, g.output
