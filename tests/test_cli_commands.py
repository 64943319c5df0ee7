"""`spense validate | inspect | eval | pack` on checkpoints a user may hand them: odd paths, edited manifests, a
missing tokenizer, a renamed weights file, an interrupted prune."""

from __future__ import annotations

import json
import shutil

import pytest
from test_cli import SMALL, _run, prune_tiny


@pytest.fixture(scope="module")
def ckpt(tiny_llama_dir, tiny_text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmds") / "ck"
    prune_tiny(tiny_llama_dir, tiny_text_file, out, "salience-cols")
    return out


def _copy(ckpt, dst, **layer_edits):
    """A copy of ``ckpt`` at ``dst`` with every layer record's keys set (``...``: the key removed)."""
    shutil.copytree(ckpt, dst)
    if layer_edits:
        mf = dst / "spense.json"
        m = json.loads(mf.read_text())
        for rec in m["layers"].values():
            for k, v in layer_edits.items():
                if v is ...:
                    rec.pop(k, None)
                else:
                    rec[k] = v
        mf.write_text(json.dumps(m))
    return dst


@pytest.mark.parametrize("name", ["ck[v2]", "ck [red]x", "a[", "a[/b]"])
def test_paths_print_as_given(ckpt, tmp_path, tiny_text_file, name):
    """A path with square brackets is not rich markup: it is printed as it is, never another path or a crash."""
    src = tmp_path / name
    src.parent.mkdir(parents=True, exist_ok=True)
    _copy(ckpt, src)
    v = _run("validate", src)
    assert v.exit_code == 0 and f"({src})" in v.stdout, v.output
    i = _run("inspect", src)
    assert i.exit_code == 0 and i.stdout.startswith(f"{src}: 14 layers"), i.output
    e = _run("eval", src, "--text", tiny_text_file, "--seqlen", "32", "--max-windows", "1", "--device", "cpu", "-q")
    assert e.exit_code == 0 and str(src) in e.stdout.replace("\n", ""), e.output
    p = _run("pack", src, "--out", tmp_path / (name + "-packed"))
    assert p.exit_code == 0 and f"-> {tmp_path / (name + '-packed')}" in p.stdout, p.output


def test_validate_reports_the_measured_density(ckpt, tmp_path):
    """The manifest's per-layer densities are not hashed: validate reports the one measured on the weights, and a
    record without a loss (null or absent, which the manifest check allows) is no traceback."""
    ok = _run("validate", ckpt)
    assert ok.exit_code == 0, ok.output
    for i, edits in enumerate([dict(density=1.0), dict(loss=None), dict(loss=...), dict(density=1.0, loss=None)]):
        v = _run("validate", _copy(ckpt, tmp_path / f"c{i}", **edits))
        assert v.exit_code == 0, v.output
        assert v.stdout.split("density ")[1][:6] == ok.stdout.split("density ")[1][:6] != "1.0000"


def test_validate_names_what_eval_would_miss(ckpt, tmp_path):
    """No tokenizer: OK with a warning that eval and generate need one. A renamed weights file: refused, as
    transformers could not load it."""
    c = _copy(ckpt, tmp_path / "notok")
    for f in c.iterdir():
        if f.name.startswith("tokenizer") or f.name in ("vocab.json", "special_tokens_map.json"):
            f.unlink()
    v = _run("validate", c)
    assert v.exit_code == 0 and "no tokenizer" in v.stderr and "spense eval" in v.stderr, v.output
    r = _copy(ckpt, tmp_path / "ren")
    (r / "model.safetensors").rename(r / "weights.safetensors")
    v = _run("validate", r)
    assert v.exit_code == 2 and "has no model.safetensors" in v.stderr and "Traceback" not in v.output, v.output


def test_missing_checkpoint_names_its_partial_run(tmp_path):
    (tmp_path / "out.partial").mkdir()
    v = _run("validate", tmp_path / "out")
    assert v.exit_code == 2 and "out.partial holds an interrupted `spense prune`" in v.stderr, v.output
    v = _run("validate", tmp_path / "other")
    assert v.exit_code == 2 and "does not exist" in v.stderr and "partial" not in v.stderr


def test_inspect_names_the_kind_and_strips_the_common_prefix(ckpt, tmp_path):
    i = _run("inspect", ckpt)
    assert i.exit_code == 0 and "dense with zeros, method spense (salience-cols); names below model.layers." \
        in i.stdout, i.output
    assert "\n0.self_attn.q_proj " in i.stdout and "model.layers.0" not in i.stdout.split("\n", 1)[1]
    assert _run("pack", ckpt, "--out", tmp_path / "p8", "--fp8").exit_code == 0
    i = _run("inspect", tmp_path / "p8")
    assert i.exit_code == 0 and "14 layers, packed, FP8 (e4m3)" in i.stdout, i.output
    v = _run("validate", tmp_path / "p8")
    assert v.exit_code == 0 and "packed, FP8 (e4m3)" in v.stdout, v.output


def test_inspect_says_where_unstructured_zeros_lie(tiny_llama_dir, tiny_text_file, tmp_path):
    """--method unstructured keeps every weight in the dense region (dense ratio 1 on every layer): the title says
    that its zeros lie there, so a reader does not take the layers for unpruned."""
    out = tmp_path / "u"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--method", "unstructured", *SMALL)
    assert res.exit_code == 0, res.output
    i = _run("inspect", out)
    assert i.exit_code == 0 and "method unstructured, no 2:4 region: the zeros lie unstructured" in i.stdout, i.output
    assert "method unstructured (unstructured)" not in i.stdout


def test_demo_warns_when_no_dense_block_fits(tiny_llama_dir):
    """The tiny model's linears have 64-128 rows and columns: 25 % of them rounds to no block of 64, so every spense
    row would equal sparsegpt 2:4. The demo says so before it runs; with blocks of 16 it says nothing."""
    import warnings

    from spense.cli import demo_methods
    from spense.cli.commands import _warn_empty_dense_regions
    from spense.hf import load_model

    model = load_model(tiny_llama_dir)
    with pytest.warns(UserWarning, match="rounds to no whole block of --block 64 on any layer"):
        _warn_empty_dense_regions(model, demo_methods(block=64), 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_empty_dense_regions(model, demo_methods(block=16), 16)


def test_prune_warns_when_no_layer_got_a_dense_region(tiny_llama_dir, tiny_text_file, tmp_path):
    """25 % of the tiny model's 64-128 rows and columns rounds to no block of 64: the run says that its checkpoint is
    plain 2:4; with blocks of 16 it says nothing."""
    args = ("prune", tiny_llama_dir, "--calib", tiny_text_file, "--method", "spense", "--dense-ratio", "0.25",
            "--strategy", "salience-cols", *SMALL)
    res = _run(*args, "--out", tmp_path / "b64", "--block", "64")
    assert res.exit_code == 0 and "no layer got a dense region" in res.stderr, res.output
    assert "pass a smaller --block" in res.stderr
    res = _run(*args, "--out", tmp_path / "b16", "--block", "16")
    assert res.exit_code == 0 and "dense region" not in res.stderr, res.output
