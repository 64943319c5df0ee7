"""Tests for spense.io: atomic checkpoint write, manifest hashes, validation, loading."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import spense
from spense import io
from spense.errors import CheckpointError, FormatError, InputError
from spense.format import SpenseLayout, is_nm
from spense.masks import magnitude_scores, nm_prune_mask

PRUNED = {
    # module name -> (axis, block): cols on a (64, 128) weight, rows on a (128, 64) weight
    "model.layers.0.mlp.down_proj": ("cols", 64),
    "model.layers.1.mlp.gate_proj": ("rows", 64),
}


def prune_24(w: torch.Tensor, lay: SpenseLayout) -> torch.Tensor:
    """Zero the 2 smallest-magnitude entries of every group of 4 in the sparse region of ``w``."""
    s, d = lay.split(w)
    return lay.merge(s.masked_fill(nm_prune_mask(magnitude_scores(s), 2, 4), 0.0), d)


def prune_model(model, seed: int = 0) -> dict:
    """Prune the PRUNED layers of ``model`` in place by hand; return the manifest's layer records."""
    gen = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    layers = {}
    for name, (axis, block) in PRUNED.items():
        lin = modules[name]
        N, K = lin.weight.shape
        dim = N if axis == "rows" else K
        idx = torch.randperm(dim, generator=gen)[:block].sort().values
        lay = SpenseLayout((N, K), axis=axis, dense_idx=idx, block=block)
        with torch.no_grad():
            lin.weight.copy_(prune_24(lin.weight.float(), lay).to(lin.weight.dtype))
        lay.check_weight(lin.weight)
        layers[name] = {
            "weight": f"{name}.weight",
            "transposed": False,
            "layout": lay.to_dict(),
            "method": "spense",
            "strategy": "random",
            "dense_ratio": lay.dense_ratio,
            "loss": 0.5,
            "density": float((lin.weight != 0).float().mean()),
        }
    return layers


def dir_hashes(path: Path) -> dict[str, str]:
    return {
        str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file()
    }


@pytest.fixture
def pruned(tiny_llama, tiny_llama_dir):
    model, _ = tiny_llama
    layers = prune_model(model)
    manifest = {"method": "spense", "layers": layers, "config": {"dense_ratio": 0.25}}
    return model, manifest


@pytest.fixture
def ckpt(pruned, tiny_llama_dir, tmp_path) -> Path:
    model, manifest = pruned
    return io.save_checkpoint(model, tiny_llama_dir, tmp_path / "out", manifest)


def tensor_span(file: Path, name: str) -> tuple[int, int]:
    """Absolute byte range of tensor ``name``'s data inside a safetensors file."""
    raw = file.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    a, b = header[name]["data_offsets"]
    return 8 + n + a, 8 + n + b


def rewrite_manifest(path: Path, fn) -> None:
    mf = path / "spense.json"
    m = json.loads(mf.read_text())
    fn(m)
    mf.write_text(json.dumps(m))


# -- helpers ------------------------------------------------------------------------------------
def test_tensor_sha256_raw_bytes():
    t = torch.tensor([1, 2, 258], dtype=torch.int16)
    assert io.tensor_sha256(t) == hashlib.sha256(b"\x01\x00\x02\x00\x02\x01").hexdigest()
    b = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.bfloat16)
    assert io.tensor_sha256(b) == hashlib.sha256(b.view(torch.int16).numpy().tobytes()).hexdigest()
    assert io.tensor_sha256(b.t()) == io.tensor_sha256(b.t().contiguous())
    assert io.tensor_sha256(b) != io.tensor_sha256(b.float())


def test_check_model_dir(tiny_llama_dir, tmp_path):
    assert io.check_model_dir(tiny_llama_dir) == tiny_llama_dir.resolve()
    with pytest.raises(InputError, match="does not exist.*never downloads"):
        io.check_model_dir(tmp_path / "meta-llama/Llama-2-7b-hf")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        io.check_model_dir(f)
    with pytest.raises(InputError, match="no config.json"):
        io.check_model_dir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="no weights"):
        io.check_model_dir(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    assert io.check_model_dir(tmp_path) == tmp_path.resolve()


# -- save / validate round trip -------------------------------------------------------------------
def test_round_trip(pruned, ckpt, tiny_llama_dir):
    model, manifest = pruned
    snapshot = json.dumps(manifest, sort_keys=True)
    m = io.validate_checkpoint(ckpt)
    assert json.dumps(manifest, sort_keys=True) == snapshot  # caller's manifest not modified
    assert m["format"] == "spense" and m["format_version"] == 1
    assert m["library_version"] == spense.__version__
    assert m["method"] == "spense" and m["config"] == {"dense_ratio": 0.25}
    assert m["layers"] == manifest["layers"]
    sd = model.state_dict()
    assert set(m["tensors"]) == set(sd)
    for name, h in m["tensors"].items():
        assert h == io.tensor_sha256(sd[name]), name
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json", "spense.json"):
        assert (ckpt / f).is_file()
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]
    # the stored pruned weights are really 2:4 in their sparse region
    stored = load_file(ckpt / "model.safetensors")
    for rec in m["layers"].values():
        lay = SpenseLayout.from_dict(rec["layout"])
        s, d = lay.split(stored[rec["weight"]])
        assert is_nm(s) and not is_nm(d)


def test_summarize(ckpt):
    rows = io.summarize_checkpoint(ckpt)
    assert [r["name"] for r in rows] == list(PRUNED)
    for r in rows:
        assert r["n_dense"] == 64
        assert r["structural_density"] == pytest.approx(0.75)  # 64 of 128 dense + half of the rest
        assert 0.6 < r["density"] <= 0.75
        assert r["loss"] == 0.5 and r["strategy"] == "random" and r["method"] == "spense"
    assert rows[0]["axis"] == "cols" and rows[0]["shape"] == [64, 128]
    assert rows[1]["axis"] == "rows" and rows[1]["shape"] == [128, 64]


def test_load_checkpoint_matches_model(pruned, ckpt):
    model, _ = pruned
    loaded = io.load_checkpoint(ckpt)
    ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert not loaded.training
    assert io.load_checkpoint(ckpt, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_load_checkpoint_refuses_what_cannot_fit_in_host_memory(ckpt, monkeypatch):
    """Counted from the safetensors headers before any load: the stored bytes, or the bytes in the dtype asked
    for (a float32 checkpoint asked in bfloat16 needs half)."""
    from spense import hostmem
    from spense.weights import weight_counts

    stored = 4 * sum(weight_counts(ckpt).values())  # the tiny model is saved in float32
    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: stored - 1)
    with pytest.raises(InputError, match=r"loading .*out \(0\.00 B weights\) needs 0\.0 GB of host memory"):
        io.load_checkpoint(ckpt)
    assert io.load_checkpoint(ckpt, dtype=torch.bfloat16).dtype == torch.bfloat16  # stored // 2 bytes fit


def test_tied_embeddings_round_trip(tiny_llama_dir, tmp_path):
    from conftest import build_tiny_llama

    model = build_tiny_llama(512, tie_word_embeddings=True)
    out = io.save_checkpoint(model, tiny_llama_dir, tmp_path / "tied", {"layers": {}})
    m = io.validate_checkpoint(out)
    assert "lm_head.weight" not in m["tensors"]  # stored once, as transformers does
    loaded = io.load_checkpoint(out)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    ids = torch.arange(16)[None]
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_save_refuses_invalid_layer_record(tiny_llama, tiny_llama_dir, tmp_path):
    model, _ = tiny_llama  # not pruned: a 2:4 layout record is a lie
    lay = SpenseLayout((64, 128), axis="cols", dense_idx=torch.arange(64))
    rec = {"weight": "model.layers.0.mlp.down_proj.weight", "layout": lay.to_dict()}
    with pytest.raises(FormatError, match="layer model.layers.0.mlp.down_proj: sparse region breaks 2:4"):
        io.save_checkpoint(model, tiny_llama_dir, tmp_path / "out",
                           {"layers": {"model.layers.0.mlp.down_proj": rec}})
    rec = {"weight": "no.such.weight", "layout": lay.to_dict()}
    with pytest.raises(CheckpointError, match="no.such.weight"):
        io.save_checkpoint(model, tiny_llama_dir, tmp_path / "out", {"layers": {"x": rec}})
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


# -- safety of the write ---------------------------------------------------------------------------
def test_source_dir_untouched(pruned, tiny_llama_dir, tmp_path):
    model, manifest = pruned
    before = dir_hashes(tiny_llama_dir)
    mtimes = {f: f.stat().st_mtime_ns for f in tiny_llama_dir.iterdir()}
    io.save_checkpoint(model, tiny_llama_dir, tmp_path / "out", manifest)
    assert dir_hashes(tiny_llama_dir) == before
    assert {f: f.stat().st_mtime_ns for f in tiny_llama_dir.iterdir()} == mtimes


def test_out_exists_overwrite(pruned, ckpt, tiny_llama_dir):
    model, manifest = pruned
    stale = ckpt / "model-00002-of-00002.safetensors"  # an earlier run's shard: a checkpoint's own kind of file
    stale.write_bytes(b"old")
    with pytest.raises(CheckpointError, match="already exists.*--overwrite"):
        io.save_checkpoint(model, tiny_llama_dir, ckpt, manifest)
    assert stale.exists()
    m2 = dict(manifest, method="changed")
    assert io.save_checkpoint(model, tiny_llama_dir, ckpt, m2, overwrite=True) == ckpt
    assert not stale.exists()
    assert io.validate_checkpoint(ckpt)["method"] == "changed"
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["out"]  # no temp / old dirs left


def test_overwrite_refuses_foreign_dir(pruned, tiny_llama_dir, tmp_path):
    model, manifest = pruned
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(CheckpointError, match="not a Spense checkpoint"):
        io.save_checkpoint(model, tiny_llama_dir, foreign, manifest, overwrite=True)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_overwrite_refuses_a_checkpoint_holding_files_of_the_users(pruned, ckpt, tiny_llama_dir, tmp_path):
    """``--overwrite`` replaces a Spense checkpoint, never a file no checkpoint writes (named in the message), nor
    an input of the run inside the output."""
    model, manifest = pruned
    assert io.foreign_files(ckpt) == []
    (ckpt / "notes.txt").write_text("mine")
    (ckpt / "valid.txt").write_text("calibration")
    with pytest.raises(CheckpointError, match=r"holds files a Spense checkpoint does not \(notes.txt, valid.txt\)"):
        io.save_checkpoint(model, tiny_llama_dir, ckpt, manifest, overwrite=True)
    assert (ckpt / "notes.txt").read_text() == "mine" and (ckpt / "valid.txt").read_text() == "calibration"
    with pytest.raises(CheckpointError, match=r"^--calib .*valid.txt is inside the output .*; move it or choose"):
        io.check_out_dir(tiny_llama_dir, ckpt, True, inputs={"--calib": ckpt / "valid.txt", "--eval": None})
    other = tmp_path / "elsewhere.txt"
    io.check_out_dir(tiny_llama_dir, tmp_path / "new", True, inputs={"--calib": other})  # outside: fine


def test_refuses_out_in_source(pruned, tiny_llama_dir, tmp_path):
    model, manifest = pruned
    before = dir_hashes(tiny_llama_dir)
    for out in (tiny_llama_dir, tiny_llama_dir / "pruned", tiny_llama_dir / ".." / tiny_llama_dir.name):
        with pytest.raises(CheckpointError, match="source model"):
            io.save_checkpoint(model, tiny_llama_dir, out, manifest, overwrite=True)
    # source inside out
    src = tmp_path / "outer" / "src"
    shutil.copytree(tiny_llama_dir, src)
    with pytest.raises(CheckpointError, match="contains the source model"):
        io.save_checkpoint(model, src, tmp_path / "outer", manifest, overwrite=True)
    assert dir_hashes(tiny_llama_dir) == before


def test_failure_mid_write_leaves_nothing(pruned, tiny_llama_dir, tmp_path, monkeypatch):
    model, manifest = pruned
    calls = []

    def boom(*a, **k):
        calls.append(1)
        raise RuntimeError("disk full")

    monkeypatch.setattr(io, "copy_side_files", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint(model, tiny_llama_dir, tmp_path / "out", manifest)
    assert calls
    assert list(tmp_path.iterdir()) == []


def test_failure_during_overwrite_keeps_old(pruned, ckpt, tiny_llama_dir, monkeypatch):
    model, manifest = pruned
    before = dir_hashes(ckpt)
    monkeypatch.setattr(io, "tensor_sha256", lambda t: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint(model, tiny_llama_dir, ckpt, manifest, overwrite=True)
    assert dir_hashes(ckpt) == before
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["out"]


# -- validation refusals ---------------------------------------------------------------------------
def test_tampered_tensor_byte(ckpt):
    f = ckpt / "model.safetensors"
    a, _ = tensor_span(f, "model.layers.1.self_attn.q_proj.weight")
    raw = bytearray(f.read_bytes())
    raw[a + 5] ^= 0x01
    f.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="q_proj.weight.*SHA-256"):
        io.validate_checkpoint(ckpt)
    with pytest.raises(CheckpointError):
        io.load_checkpoint(ckpt)


def test_truncated_file(ckpt):
    f = ckpt / "model.safetensors"
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated or corrupt"):
        io.validate_checkpoint(ckpt)
    f.write_bytes(raw[:100])  # header cut
    with pytest.raises(CheckpointError, match="model.safetensors"):
        io.validate_checkpoint(ckpt)
    f.write_bytes(b"")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        io.validate_checkpoint(ckpt)


def test_missing_pieces(ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        io.validate_checkpoint(tmp_path / "nope")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CheckpointError, match="afile is not a directory"):
        io.validate_checkpoint(tmp_path / "afile")
    for name, pattern in (("config.json", "no config.json"), ("model.safetensors", "no \\*.safetensors"),
                          ("spense.json", "no spense.json")):
        c = tmp_path / f"c-{name}"
        shutil.copytree(ckpt, c)
        (c / name).unlink()
        with pytest.raises(CheckpointError, match=pattern):
            io.validate_checkpoint(c)


def test_malformed_manifest(ckpt):
    mf = ckpt / "spense.json"
    good = mf.read_text()
    mf.write_text(good[:-20])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        io.validate_checkpoint(ckpt)
    mf.write_text("[]")
    with pytest.raises(CheckpointError, match="JSON object"):
        io.validate_checkpoint(ckpt)
    mf.write_text("{}")
    with pytest.raises(CheckpointError, match=r"spense.json has no \"format\": 'spense' entry; it is not a Spense "):
        io.validate_checkpoint(ckpt)
    for key, val, pattern in (("format", "other", "format is 'other'"),
                              ("format_version", 2, "format_version 2 is not supported"),
                              ("format_version", 1.0, "format_version 1.0 is not supported"),
                              ("packed", "no", "'packed' must be true or false, got 'no'"),
                              ("tensors", [], "'tensors' must be")):
        mf.write_text(good)
        rewrite_manifest(ckpt, lambda m: m.__setitem__(key, val))
        with pytest.raises(CheckpointError, match=pattern):
            io.validate_checkpoint(ckpt)
    for key, val in (("density", "x"), ("density", 1.5), ("loss", -1.0), ("loss", True)):
        mf.write_text(good)
        rewrite_manifest(ckpt, lambda m: next(iter(m["layers"].values())).__setitem__(key, val))
        with pytest.raises(CheckpointError, match=f"'{key}' must be a number in .*edited or corrupt"):
            io.validate_checkpoint(ckpt)
    for val in (None, "abc", 7):  # a hash edited away is named as such, not as a mismatch of the weights
        mf.write_text(good)
        rewrite_manifest(ckpt, lambda m: m["tensors"].__setitem__("model.norm.weight", val))
        with pytest.raises(CheckpointError, match=f"tensor 'model.norm.weight' has no sha256 .*got {val!r}"):
            io.validate_checkpoint(ckpt)
    mf.write_text(good)
    io.validate_checkpoint(ckpt)


def test_missing_and_extra_tensor(ckpt):
    good = (ckpt / "spense.json").read_text()
    rewrite_manifest(ckpt, lambda m: m["tensors"].pop("model.norm.weight"))
    with pytest.raises(CheckpointError, match="'model.norm.weight' is not listed.*extra"):
        io.validate_checkpoint(ckpt)
    (ckpt / "spense.json").write_text(good)
    rewrite_manifest(ckpt, lambda m: m["tensors"].__setitem__("ghost.weight", "0" * 64))
    with pytest.raises(CheckpointError, match="missing from the weights.*ghost.weight"):
        io.validate_checkpoint(ckpt)


def _restore_dense_weight(ckpt: Path, tiny_llama_dir: Path, tensor: str) -> None:
    """Replace a pruned tensor by the unpruned original and re-hash it, so only the layout check can catch it."""
    sd = load_file(ckpt / "model.safetensors")
    sd[tensor] = load_file(tiny_llama_dir / "model.safetensors")[tensor]
    save_file(sd, ckpt / "model.safetensors", metadata={"format": "pt"})
    rewrite_manifest(ckpt, lambda m: m["tensors"].__setitem__(tensor, io.tensor_sha256(sd[tensor])))


def test_layer_breaking_24_is_refused(ckpt, tiny_llama_dir):
    _restore_dense_weight(ckpt, tiny_llama_dir, "model.layers.1.mlp.gate_proj.weight")
    with pytest.raises(FormatError, match="layer model.layers.1.mlp.gate_proj: sparse region breaks 2:4"):
        io.validate_checkpoint(ckpt)


def test_layer_shape_and_layout_errors(ckpt):
    good = (ckpt / "spense.json").read_text()
    name = "model.layers.0.mlp.down_proj"
    rewrite_manifest(ckpt, lambda m: m["layers"][name].__setitem__("transposed", True))
    with pytest.raises(FormatError, match=f"layer {name}: stored weight .* \\(transposed\\)"):
        io.validate_checkpoint(ckpt)
    (ckpt / "spense.json").write_text(good)
    rewrite_manifest(ckpt, lambda m: m["layers"][name]["layout"].__setitem__("dense_idx", [0, 1, 2]))
    with pytest.raises(FormatError, match=f"layer {name}: dense region has 3 cols"):
        io.validate_checkpoint(ckpt)
    (ckpt / "spense.json").write_text(good)
    rewrite_manifest(ckpt, lambda m: m["layers"][name]["layout"].pop("axis"))
    with pytest.raises(FormatError, match=f"layer {name}: malformed layout"):
        io.validate_checkpoint(ckpt)
    (ckpt / "spense.json").write_text(good)
    rewrite_manifest(ckpt, lambda m: m["layers"][name].pop("weight"))
    with pytest.raises(CheckpointError, match=f"layer {name}: record needs"):
        io.validate_checkpoint(ckpt)


@pytest.mark.parametrize("key,value,msg", [
    ("shape", [576], "shape must be two integers"),
    ("shape", [64.5, 64], "shape must be two integers"),
    ("shape", "64x64", "shape must be two integers"),
    ("shape", [0, 64], "shape must be positive"),
    ("m", 0, "n of m with 0 < n <= m, got 2:0"),
    ("n", 5, "n of m with 0 < n <= m, got 5:4"),
    ("block", "16", "block must be an integer"),
])
def test_tampered_layout_is_one_error(ckpt, key, value, msg):
    """A layout field edited by hand (a one-element shape, m = 0, ...) is a FormatError naming the layer, not an
    IndexError or ZeroDivisionError from inside the checks."""
    name = "model.layers.0.mlp.down_proj"
    rewrite_manifest(ckpt, lambda m: m["layers"][name]["layout"].__setitem__(key, value))
    with pytest.raises(FormatError, match=f"layer {name}: .*{re.escape(msg)}"):
        io.validate_checkpoint(ckpt)


def test_failed_rename_restores_old(pruned, ckpt, tiny_llama_dir, monkeypatch):
    model, manifest = pruned
    before = dir_hashes(ckpt)
    real_replace = os.replace

    def flaky_replace(src, dst):
        if ".tmp-" in Path(src).name:
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="rename failed"):
        io.save_checkpoint(model, tiny_llama_dir, ckpt, manifest, overwrite=True)
    monkeypatch.undo()
    assert dir_hashes(ckpt) == before
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["out"]
