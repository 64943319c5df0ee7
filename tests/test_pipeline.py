"""Pipeline tests on tiny random models (Llama from conftest, GPT-2 with Conv1D, OPT)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import build_tiny_llama
from spense import data, io
from spense.errors import CheckpointError, InputError, NumericalError
from spense.format import SpenseLayout, is_nm
from spense.methods import PruneConfig
from spense.capture import capture_inputs, find_groups
from spense.hf import find_blocks, find_linears, get_weight
from spense.pipeline import prune_loaded, prune_model
from spense.resume import partial_dir

NS, SL = 4, 32
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _cfg(**kw) -> PruneConfig:
    kw.setdefault("method", "spense")
    kw.setdefault("block", 16)
    return PruneConfig(**kw)


def _save_model_dir(model, tokenizer_src: Path, out: Path) -> Path:
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tokenizer_src / name).is_file():
            shutil.copyfile(tokenizer_src / name, out / name)
    return out


def _vocab(tiny_llama_dir: Path) -> int:
    return len(data.load_tokenizer(tiny_llama_dir))


def _windows(tiny_llama_dir: Path, text_file: Path, n=NS, sl=SL) -> torch.Tensor:
    tok = data.load_tokenizer(tiny_llama_dir)
    return data.calibration_windows(data.tokenize(tok, data.read_text(text_file)), n, sl, 0)


def _load(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True).eval()


def _prune(model_dir, out, text, cfg=None, **kw):
    kw.setdefault("nsamples", NS)
    kw.setdefault("seqlen", SL)
    kw.setdefault("device", "cpu")
    kw.setdefault("progress", False)
    return prune_model(model_dir, out, cfg or _cfg(), text, **kw)


# -- structure ------------------------------------------------------------------------------------
def test_find_blocks_unsupported_architecture():
    class Weird(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stuff = torch.nn.ModuleList([torch.nn.Linear(8, 8)])

    with pytest.raises(InputError, match="unsupported architecture Weird"):
        find_blocks(Weird())


def test_llama_groups_in_execution_order(tiny_llama, tiny_llama_dir, tiny_text_file):
    model, _ = tiny_llama
    prefix, blocks = find_blocks(model)
    assert prefix == "model.layers" and len(blocks) == 2
    inputs = capture_inputs(model, _windows(tiny_llama_dir, tiny_text_file, n=2), torch.device("cpu"))
    assert inputs.hidden.shape == (2, SL, 64) and inputs.hidden.dtype == torch.float32
    linears = find_linears(blocks[0], 16)
    groups = find_groups(blocks[0], linears, inputs, torch.device("cpu"))
    assert groups == [
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        ["self_attn.o_proj"],
        ["mlp.gate_proj", "mlp.up_proj"],
        ["mlp.down_proj"],
    ]


# -- end to end on Llama ----------------------------------------------------------------------------
def test_prune_llama_checkpoint(tiny_llama_dir, tiny_text_file, tmp_path):
    out = tmp_path / "out"
    man = _prune(tiny_llama_dir, out, tiny_text_file, _cfg(strategy="salience-cols", dense_ratio=0.25))
    assert not partial_dir(out).exists()
    assert len(man["layers"]) == 2 * 7
    assert man["source_model"] == man["source_dir"] == str(Path(tiny_llama_dir).resolve())  # a plain folder
    io.validate_checkpoint(out)
    model = _load(out)
    params = dict(model.named_parameters())
    n_dense = 0
    for name, rec in man["layers"].items():
        assert rec["weight"] == f"{name}.weight"
        lay = SpenseLayout.from_dict(rec["layout"])
        w = params[rec["weight"]].data
        lay.check_weight(w)
        s, _ = lay.split(w)
        assert is_nm(s) and s.numel() > 0
        n_dense += lay.n_dense
        assert 0.4 < rec["density"] < 0.7
    assert n_dense > 0  # block 16 gives real dense regions
    # embeddings and lm_head are never pruned
    src = _load(tiny_llama_dir)
    assert torch.equal(model.lm_head.weight, src.lm_head.weight)
    assert torch.equal(model.model.embed_tokens.weight, src.model.embed_tokens.weight)


def test_tie_cols_gives_a_group_one_dense_region(tiny_llama_dir, tiny_text_file, tmp_path):
    """tie_cols: q/k/v and gate/up keep the same dense columns (ranked on their summed salience), which
    the engine fuses into one Spense layer each; untied, the regions differ somewhere."""
    def regions(man):
        return {n: SpenseLayout.from_dict(r["layout"]).dense_idx for n, r in man["layers"].items()}

    tied = regions(_prune(tiny_llama_dir, tmp_path / "t", tiny_text_file,
                          _cfg(strategy="salience-cols", dense_ratio=0.25, tie_cols=True)))
    free = regions(_prune(tiny_llama_dir, tmp_path / "f", tiny_text_file,
                          _cfg(strategy="salience-cols", dense_ratio=0.25)))
    groups = [("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), ("mlp.gate_proj", "mlp.up_proj")]
    differs = False
    for i in range(2):
        for g in groups:
            names = [f"model.layers.{i}.{n}" for n in g]
            assert all(torch.equal(tied[n], tied[names[0]]) for n in names), names
            differs |= not all(torch.equal(free[n], free[names[0]]) for n in names)
    assert differs
    with pytest.raises(InputError, match="tie_cols"):
        _cfg(strategy="loss-rows", dense_ratio=0.25, tie_cols=True).validate()


def test_dense_ratio_one_leaves_weights_unchanged(tiny_llama, tiny_llama_dir, tiny_text_file):
    model, _ = tiny_llama
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recs = prune_loaded(model, _windows(tiny_llama_dir, tiny_text_file), _cfg(dense_ratio=1.0), "cpu",
                        progress=False)
    assert len(recs) == 14
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_sparsegpt_prunes_every_linear_2_4(tiny_llama, tiny_llama_dir, tiny_text_file):
    model, _ = tiny_llama
    prune_loaded(model, _windows(tiny_llama_dir, tiny_text_file), _cfg(method="sparsegpt", dense_ratio=0.0),
                 "cpu", progress=False)
    _, blocks = find_blocks(model)
    for b in blocks:
        for name, mod in find_linears(b, 16).items():
            w = get_weight(mod)
            assert is_nm(w), name
            assert abs(float((w == 0).float().mean()) - 0.5) < 0.02, name


def test_bf16_source_stays_bf16(tiny_llama_dir, tiny_text_file, tmp_path):
    src = _save_model_dir(build_tiny_llama(_vocab(tiny_llama_dir)).to(torch.bfloat16), tiny_llama_dir,
                          tmp_path / "bf16")
    out = tmp_path / "out"
    man = _prune(src, out, tiny_text_file, _cfg(method="sparsegpt", dense_ratio=0.0))
    io.validate_checkpoint(out)
    sd = load_file(str(out / "model.safetensors"))
    for rec in man["layers"].values():
        assert sd[rec["weight"]].dtype == torch.bfloat16
        assert is_nm(sd[rec["weight"]].float())


# -- other architectures ----------------------------------------------------------------------------
def test_gpt2_conv1d_prunes(tiny_llama_dir, tiny_text_file, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=_vocab(tiny_llama_dir), n_positions=128, n_embd=64, n_layer=2, n_head=4)
    src = _save_model_dir(GPT2LMHeadModel(cfg).eval(), tiny_llama_dir, tmp_path / "gpt2")
    model = _load(src)
    prefix, blocks = find_blocks(model)
    assert prefix == "transformer.h"
    lin = find_linears(blocks[0], 16)
    assert list(lin) == ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    assert all(isinstance(m, Conv1D) for m in lin.values())
    assert get_weight(lin["mlp.c_fc"]).shape == (256, 64)  # (out, in) view of a (in, out) Conv1D
    inputs = capture_inputs(model, _windows(tiny_llama_dir, tiny_text_file, n=1), torch.device("cpu"))
    assert find_groups(blocks[0], lin, inputs, torch.device("cpu")) == [
        ["attn.c_attn"], ["attn.c_proj"], ["mlp.c_fc"], ["mlp.c_proj"]]

    out = tmp_path / "out"
    man = _prune(src, out, tiny_text_file, _cfg(strategy="first", axis="cols", dense_ratio=0.25))
    io.validate_checkpoint(out)
    assert len(man["layers"]) == 8 and all(r["transposed"] for r in man["layers"].values())
    pruned = _load(out)
    for rec in man["layers"].values():
        w = dict(pruned.named_parameters())[rec["weight"]].data.t()  # stored (K, N)
        SpenseLayout.from_dict(rec["layout"]).check_weight(w)
        assert float((w == 0).float().mean()) > 0.3


def test_opt_prunes(tiny_llama_dir, tiny_text_file, tmp_path):
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(0)
    cfg = OPTConfig(vocab_size=_vocab(tiny_llama_dir), hidden_size=64, ffn_dim=128, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=64)
    src = _save_model_dir(OPTForCausalLM(cfg).eval(), tiny_llama_dir, tmp_path / "opt")
    model = _load(src)
    prefix, blocks = find_blocks(model)
    assert prefix == "model.decoder.layers"
    lin = find_linears(blocks[0], 16)
    inputs = capture_inputs(model, _windows(tiny_llama_dir, tiny_text_file, n=1), torch.device("cpu"))
    assert find_groups(blocks[0], lin, inputs, torch.device("cpu")) == [
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.out_proj"], ["fc1"], ["fc2"]]
    out = tmp_path / "out"
    man = _prune(src, out, tiny_text_file, _cfg(strategy="loss-rows", dense_ratio=0.25))
    io.validate_checkpoint(out)
    assert len(man["layers"]) == 12
    assert any(r["layout"]["axis"] == "rows" and r["layout"]["dense_idx"] for r in man["layers"].values())


# -- bad input --------------------------------------------------------------------------------------
def test_missing_model_and_config(tmp_path, tiny_text_file):
    with pytest.raises(InputError, match="not found"):
        _prune(tmp_path / "nope", tmp_path / "out", tiny_text_file)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        _prune(tmp_path / "empty", tmp_path / "out", tiny_text_file)


def test_dense_ratio_out_of_range(tiny_llama_dir, tiny_text_file, tmp_path):
    with pytest.raises(InputError, match=r"dense ratio must be in \[0, 1\], got 1.5"):
        _prune(tiny_llama_dir, tmp_path / "out", tiny_text_file, _cfg(dense_ratio=1.5))
    assert not (tmp_path / "out").exists()


def test_existing_output_refused_and_untouched(tiny_llama_dir, tiny_text_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="already exists"):
        _prune(tiny_llama_dir, out, tiny_text_file)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"
    assert not partial_dir(out).exists()


def test_nan_weight_names_layer(tiny_llama_dir, tiny_text_file, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_llama_dir, bad)
    sd = load_file(str(bad / "model.safetensors"))
    sd["model.layers.1.mlp.up_proj.weight"][3, 5] = float("nan")
    save_file(sd, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(NumericalError, match=r"model\.layers\.1\.mlp\.up_proj"):
        _prune(bad, tmp_path / "out", tiny_text_file)
    assert not (tmp_path / "out").exists()


def test_calibration_text_too_short(tiny_llama_dir, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("just a few words here")
    with pytest.raises(InputError, match="calibration text has .* tokens"):
        _prune(tiny_llama_dir, tmp_path / "out", short)


def test_linear_in_features_not_multiple_of_4(tiny_llama_dir, tiny_text_file, tmp_path):
    src = _save_model_dir(build_tiny_llama(_vocab(tiny_llama_dir), intermediate_size=130), tiny_llama_dir,
                          tmp_path / "odd")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"skipping model\.layers\.\d\.mlp\.down_proj: in_features 130"):
        man = _prune(src, out, tiny_text_file, _cfg(method="magnitude", dense_ratio=0.0))
    assert len(man["layers"]) == 12
    assert not any("down_proj" in n for n in man["layers"])
    io.validate_checkpoint(out)
    with pytest.raises(InputError, match=r"model\.layers\.0\.mlp\.down_proj: cannot be pruned"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _prune(src, tmp_path / "out2", tiny_text_file, _cfg(method="magnitude", dense_ratio=0.0),
                   strict=True)


# -- oracle: the Hessians actually used, recomputed from the real inputs ------------------------------
LLAMA_GROUPS = [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"],
                ["mlp.gate_proj", "mlp.up_proj"], ["mlp.down_proj"]]


def _forward(block, hidden, kwargs) -> torch.Tensor:
    """``block`` applied to every sample of ``hidden`` (one at a time, as the pipeline does)."""
    outs = []
    with torch.no_grad():
        for j in range(hidden.shape[0]):
            y = block(hidden[j:j + 1], **kwargs)
            outs.append(y[0] if isinstance(y, (tuple, list)) else y)
    return torch.cat(outs)


def _oracle_hessians(dense, pruned, hidden, kwargs, sequential):
    """``{full name: 2 X Xᵀ / n}`` in float64, recomputed independently of the pipeline.

    Block ``i`` is fed ``hidden`` pushed through the *pruned* blocks ``< i``.  For group ``g`` of
    block ``i``, ``X`` is what the group reads in a copy of the dense block whose groups ``< g`` carry
    the final pruned weights (``sequential="true"``) or none of them (``"block"``)."""
    import copy

    _, dblocks = find_blocks(dense)
    _, pblocks = find_blocks(pruned)
    out: dict[str, torch.Tensor] = {}
    for i, (db, pb) in enumerate(zip(dblocks, pblocks)):
        pw = dict(pb.named_modules())
        for g, group in enumerate(LLAMA_GROUPS):
            blk = copy.deepcopy(db)
            mods = dict(blk.named_modules())
            if sequential == "true":
                for earlier in LLAMA_GROUPS[:g]:
                    for name in earlier:
                        mods[name].weight.data.copy_(pw[name].weight.data)
            xs: list[torch.Tensor] = []
            h = mods[group[0]].register_forward_pre_hook(lambda m, a: xs.append(a[0].detach().double()))
            _forward(blk, hidden, kwargs)
            h.remove()
            X = torch.cat([x.reshape(-1, x.shape[-1]) for x in xs])
            H = 2 * X.T @ X / X.shape[0]
            for name in group:
                out[f"model.layers.{i}.{name}"] = H
        hidden = _forward(pb, hidden, kwargs)  # the next block's input: the PRUNED block's output
    return out


@pytest.mark.parametrize("sequential", ["true", "block"])
def test_oracle_hessians_and_block_inputs(tiny_llama, tiny_llama_dir, tiny_text_file, sequential):
    import copy

    model, _ = tiny_llama
    dense = copy.deepcopy(model)
    windows = _windows(tiny_llama_dir, tiny_text_file)
    inputs = capture_inputs(dense, windows, torch.device("cpu"))
    used: dict[str, torch.Tensor] = {}
    seen_by_block1: list[torch.Tensor] = []
    _, blocks = find_blocks(model)
    h = blocks[1].register_forward_pre_hook(lambda m, a, kw: seen_by_block1.append(
        (a[0] if a else kw["hidden_states"]).detach().clone()), with_kwargs=True)
    recs = prune_loaded(model, windows, _cfg(method="sparsegpt", dense_ratio=0.0), "cpu", progress=False,
                        sequential=sequential, on_hessian=lambda name, H: used.setdefault(name, H))
    h.remove()
    assert len(recs) == 14 and set(used) == set(recs)

    # layers that share an input share ONE accumulation (the very same tensor)
    for i in range(2):
        for group in LLAMA_GROUPS:
            names = [f"model.layers.{i}.{n}" for n in group]
            assert all(used[n] is used[names[0]] for n in names)

    oracle = _oracle_hessians(dense, model, inputs.hidden, inputs.kwargs, sequential)
    for name, H in used.items():
        ref = oracle[name]
        err = float((H.double() - ref).norm() / ref.norm())
        assert err < 1e-5, f"{name}: Hessian used differs from 2XXᵀ/n of its real inputs (rel. err {err:.2e})"

    # block 1 received the pruned block 0's outputs, not the dense ones
    pruned0 = _forward(blocks[0], inputs.hidden, inputs.kwargs)
    dense0 = _forward(find_blocks(dense)[1][0], inputs.hidden, inputs.kwargs)
    got = torch.cat(seen_by_block1[-NS:])
    assert torch.allclose(got, pruned0, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pruned0, dense0, rtol=1e-3, atol=1e-3)  # pruning changed them


def test_prune_block_returns_pruned_outputs(tiny_llama, tiny_llama_dir, tiny_text_file):
    from spense.capture import run_block
    from spense.pipeline import prune_block

    model, _ = tiny_llama
    inputs = capture_inputs(model, _windows(tiny_llama_dir, tiny_text_file), torch.device("cpu"))
    _, blocks = find_blocks(model)
    dense_out = run_block(blocks[0], inputs, torch.device("cpu"))
    recs, outs = prune_block(blocks[0], inputs, _cfg(method="sparsegpt", dense_ratio=0.0),
                             prefix="model.layers.0", device="cpu")
    assert sorted(recs) == sorted(f"model.layers.0.{n}" for g in LLAMA_GROUPS for n in g)
    assert torch.equal(outs, run_block(blocks[0], inputs, torch.device("cpu")))
    assert not torch.allclose(outs, dense_out, rtol=1e-3, atol=1e-3)
    for name, mod in find_linears(blocks[0], 16).items():
        assert is_nm(get_weight(mod)), name


@pytest.mark.parametrize("sequential,passes", [("true", {"self_attn.q_proj": 4, "self_attn.o_proj": 3,
                                                          "mlp.gate_proj": 2, "mlp.down_proj": 1}),
                                               ("block", {"self_attn.q_proj": 2, "self_attn.o_proj": 2,
                                                          "mlp.gate_proj": 2, "mlp.down_proj": 1})])
def test_hessian_passes_stop_at_the_input_they_read(tiny_llama, tiny_llama_dir, tiny_text_file, sequential, passes):
    """A Hessian pass runs the block only up to the input of the last group it reads: in true-sequential order
    q/k/v run in the passes for o, gate/up and down and in the outputs' pass (4 a sample), down only in the
    outputs' pass; in one "block" pass everything up to down's input. Plus one whole sample in find_groups."""
    from spense.pipeline import prune_block

    model, _ = tiny_llama
    inputs = capture_inputs(model, _windows(tiny_llama_dir, tiny_text_file), torch.device("cpu"))
    n = inputs.hidden.shape[0]
    block = find_blocks(model)[1][0]
    mods = dict(block.named_modules())
    runs = dict.fromkeys(passes, 0)
    hooks = [mods[name].register_forward_hook(lambda m, a, y, _n=name: runs.__setitem__(_n, runs[_n] + 1))
             for name in passes]
    prune_block(block, inputs, _cfg(method="sparsegpt", dense_ratio=0.0), prefix="model.layers.0", device="cpu",
                sequential=sequential)
    for h in hooks:
        h.remove()
    assert runs == {name: k * n + 1 for name, k in passes.items()}


def test_hessian_passes_that_stop_give_the_same_bits(tiny_llama, tiny_llama_dir, tiny_text_file):
    """Each group's accumulation with the pass stopped at its input equals, bit for bit, the one of a whole pass."""
    from spense.pipeline import _accumulate

    model, _ = tiny_llama
    inputs = capture_inputs(model, _windows(tiny_llama_dir, tiny_text_file), torch.device("cpu"))
    block = find_blocks(model)[1][0]
    linears = find_linears(block, 16)
    groups = find_groups(block, linears, inputs, torch.device("cpu"))
    for sequential_groups in [[g] for g in groups] + [groups]:
        cut = _accumulate(block, inputs, linears, sequential_groups, "b", torch.device("cpu"), stop=True)
        whole = _accumulate(block, inputs, linears, sequential_groups, "b", torch.device("cpu"), stop=False)
        for gi in cut:
            assert torch.equal(cut[gi].H, whole[gi].H), sequential_groups[gi]


class _TwiceBlock(torch.nn.Module):
    """A block that runs one linear twice (a → b → a): its Hessian must take both inputs."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(16, 16, bias=False), torch.nn.Linear(16, 16, bias=False)

    def forward(self, x):
        return x + self.a(torch.relu(self.b(self.a(x))))


@pytest.mark.parametrize("sequential", ["true", "block"])
def test_a_linear_run_twice_keeps_whole_passes(sequential):
    from spense.capture import BlockInputs
    from spense.pipeline import prune_block

    torch.manual_seed(0)
    block, hidden = _TwiceBlock(), torch.randn(3, 8, 16)
    used: dict[str, torch.Tensor] = {}
    xs: list[torch.Tensor] = []
    h = block.a.register_forward_pre_hook(lambda m, a: xs.append(a[0].detach().reshape(-1, 16)))
    with torch.no_grad():
        for j in range(3):
            block(hidden[j:j + 1])
    h.remove()
    X = torch.cat(xs).double()
    prune_block(block, BlockInputs(hidden), _cfg(method="sparsegpt", dense_ratio=0.0), prefix="t", device="cpu",
                sequential=sequential, on_hessian=lambda name, H: used.setdefault(name, H))
    ref = 2 * X.T @ X / X.shape[0]
    assert float((used["t.a"].double() - ref).norm() / ref.norm()) < 1e-6
