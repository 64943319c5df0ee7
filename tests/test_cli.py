"""CLI tests (typer CliRunner) on the tiny Llama from conftest."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from conftest import build_tiny_llama
from spense import data
from spense.cli import app
from spense.format import SpenseLayout, is_nm

runner = CliRunner()
SMALL = ["--nsamples", "4", "--seqlen", "32", "--device", "cpu", "--quiet"]


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _assert_error(res, pattern: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output)
    err = res.stderr
    assert err.startswith("error: "), err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert "Traceback" not in res.output
    import re

    assert re.search(pattern, err), err


def prune_tiny(model, calib, out, strategy: str):
    """``spense prune`` of the tiny model at dense ratio 0.25 with ``strategy`` (blocks of 16), checked."""
    res = _run("prune", model, "--out", out, "--calib", calib, "--method", "spense", "--dense-ratio", "0.25",
               "--strategy", strategy, "--block", "16", *SMALL)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def pruned(tiny_llama_dir, tiny_text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "pruned"
    return out, prune_tiny(tiny_llama_dir, tiny_text_file, out, "loss-rows")


def test_prune_keeps_the_chat_template_and_the_kv_cache_setting(tiny_llama_dir, tiny_text_file, tmp_path):
    """A pruned instruct model keeps its chat template, and its config.json the source's ``use_cache``."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(tiny_llama_dir, src)
    (src / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    cfg = json.loads((src / "config.json").read_text())
    cfg["use_cache"] = True
    (src / "config.json").write_text(json.dumps(cfg))
    prune_tiny(src, tiny_text_file, tmp_path / "out", "loss-rows")
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "hi"
    assert AutoConfig.from_pretrained(str(tmp_path / "out")).use_cache is True


def test_prune_validate_load(pruned):
    out, res = pruned
    assert "pruned 14 layers with spense (loss-rows, dense ratio 0.25)" in res.stdout
    assert "density 0.5" in res.stdout or "density 0.6" in res.stdout
    v = _run("validate", out)
    assert v.exit_code == 0, v.output
    assert v.stdout.startswith("OK: 14 layers")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    params = dict(model.named_parameters())
    man = json.loads((out / "spense.json").read_text())
    assert man["method"] == "spense" and man["calibration"]["nsamples"] == 4
    rows_dense = 0
    for rec in man["layers"].values():
        lay = SpenseLayout.from_dict(rec["layout"])
        assert lay.axis == "rows"
        s, _ = lay.split(params[rec["weight"]].data)
        assert is_nm(s)
        rows_dense += lay.n_dense
    assert rows_dense > 0


def test_inspect_and_eval(pruned, tiny_text_file):
    out, _ = pruned
    res = _run("inspect", out, "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 14 and rows[0]["name"] == "model.layers.0.self_attn.q_proj"
    res = _run("inspect", out)
    assert res.exit_code == 0 and "loss-rows" in res.stdout and "names below model.layers." in res.stdout
    assert "\n1.mlp.down_proj " in res.stdout and "14 layers, dense with zeros" in res.stdout
    res = _run("eval", out, "--text", tiny_text_file, "--seqlen", "32", "--max-windows", "4", "--device",
               "cpu", "--json")
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["windows"] == 4 and r["tokens"] == 4 * 31 and 1 < r["perplexity"] < 1e6
    res = _run("eval", out, "--text", tiny_text_file, "--seqlen", "32", "--max-windows", "2", "--device", "cpu",
               "--quiet")
    assert res.exit_code == 0 and "perplexity" in res.stdout


def test_prune_with_eval(tiny_llama_dir, tiny_text_file, tmp_path):
    res = _run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, "--method",
               "magnitude", "--eval", tiny_text_file, *SMALL)
    assert res.exit_code == 0, res.output
    assert "pruned 14 layers with magnitude" in res.stdout and "perplexity " in res.stdout


def test_validate_rejects_non_checkpoint(tiny_llama_dir):
    _assert_error(_run("validate", tiny_llama_dir), "no spense.json")


def test_bad_inputs_exit_2(tiny_llama_dir, tiny_text_file, tmp_path):
    _assert_error(_run("prune", tmp_path / "nope", "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL),
                  "not found: pass a local Hugging Face directory, a .gguf file or a built-in name")
    (tmp_path / "empty").mkdir()
    _assert_error(_run("prune", tmp_path / "empty", "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL),
                  "no config.json")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file,
                       "--dense-ratio", "1.5", *SMALL), r"dense ratio must be in \[0, 1\], got 1.5")
    short = tmp_path / "short.txt"
    short.write_text("only a handful of words")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", short, *SMALL),
                  "calibration text has .* tokens")
    _assert_error(_run("eval", tmp_path / "nope", "--text", tiny_text_file, "--device", "cpu"), "not found")
    assert not (tmp_path / "o").exists()


def test_existing_output_untouched(tiny_llama_dir, tiny_text_file, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, *SMALL),
                  "already exists; pass --overwrite")
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"


def test_nan_weight_error(tiny_llama_dir, tiny_text_file, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_llama_dir, bad)
    sd = load_file(str(bad / "model.safetensors"))
    sd["model.layers.0.self_attn.v_proj.weight"][0, 0] = float("inf")
    save_file(sd, str(bad / "model.safetensors"), metadata={"format": "pt"})
    _assert_error(_run("prune", bad, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL),
                  r"model\.layers\.0\.self_attn\.v_proj")


def test_strict_and_skip_warning(tiny_llama_dir, tiny_text_file, tmp_path):
    src = tmp_path / "odd"
    build_tiny_llama(len(data.load_tokenizer(tiny_llama_dir)), intermediate_size=130).save_pretrained(src)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tiny_llama_dir / f, src / f)
    res = _run("prune", src, "--out", tmp_path / "o", "--calib", tiny_text_file, "--method", "wanda", *SMALL)
    assert res.exit_code == 0, res.output
    assert "warning: skipping model.layers.0.mlp.down_proj: in_features 130" in res.stderr
    assert "pruned 12 layers" in res.stdout
    res = _run("prune", src, "--out", tmp_path / "o3", "--calib", tiny_text_file, *SMALL)  # the allocator's passes too
    assert res.exit_code == 0, res.output
    assert res.stderr.count("skipping model.layers.0.mlp.down_proj:") == 1, res.stderr  # said once, not per pass
    _assert_error(_run("prune", src, "--out", tmp_path / "o2", "--calib", tiny_text_file, "--method", "wanda",
                       "--strict", *SMALL), r"down_proj: cannot be pruned \(in_features 130")


def test_resume_via_cli(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    from spense.pipeline import CRASH_ENV

    import os
    import shutil

    out, src = tmp_path / "o", tmp_path / "src"
    shutil.copytree(tiny_llama_dir, src)
    base = ["prune", src, "--out", out, "--calib", tiny_text_file, "--strategy", "random", "--block", "16"]
    args = [*base, *SMALL]
    monkeypatch.setenv(CRASH_ENV, "0")
    res = _run(*args)
    assert res.exit_code != 0 and not out.exists()
    monkeypatch.delenv(CRASH_ENV)
    _assert_error(_run(*base, "--seed", "1", *SMALL), "--restart")
    weights = src / "model.safetensors"  # weights rewritten in place since the interruption: not mixed in
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _assert_error(_run(*args), r"different settings \(model or its files, .*--restart")
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = _run(*args)
    assert res.exit_code == 0, res.output
    assert f"resuming the interrupted run in {out.resolve()}.partial: 1 pruned block(s) kept" in res.stdout
    assert _run("validate", out).exit_code == 0


def test_a_foreign_partial_folder_is_kept(tiny_llama_dir, tiny_text_file, tmp_path):
    """``OUT.partial`` holding files no run writes is the user's: refused, not removed."""
    mine = tmp_path / "notes.partial"
    mine.mkdir()
    (mine / "README.txt").write_text("mine")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "notes", "--calib", tiny_text_file,
                       "--method", "sparsegpt", *SMALL),
                  r"notes\.partial exists and is not an interrupted spense run's state \(it holds README\.txt\)")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "notes", "--calib", tiny_text_file,
                       "--method", "sparsegpt", "--restart", *SMALL), r"is not an interrupted spense run's state")
    assert (mine / "README.txt").read_text() == "mine"


def test_help_lists_only_real_commands():
    res = _run("--help")
    assert res.exit_code == 0
    for cmd in ("prune", "eval", "validate", "inspect", "demo"):
        assert cmd in res.stdout
    res = _run("prune", "--help")
    assert "--dense-ratio" in res.stdout and "--restart" in res.stdout
    for cmd in ("eval", "demo", "prune"):  # the model option's help names its sources once
        text = " ".join(_run(cmd, "--help").stdout.split())
        assert text.count("Hugging Face directory") == 1 and "Model: Model" not in text, cmd


def test_prune_col_blocks_gives_gather_free_kernel_layouts(tiny_llama_dir, tiny_text_file, tmp_path):
    from spense.format import SpenseLayout
    from spense.runtime.mmasp import block_steps

    out = tmp_path / "blocks"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--block", "16", "--col-blocks",
               *SMALL)
    assert res.exit_code == 0, res.output
    man = json.loads((out / "spense.json").read_text())
    assert man["config"]["col_blocks"] is True
    for name, rec in man["layers"].items():
        lay = SpenseLayout.from_dict(rec["layout"])
        assert lay.axis == "cols" and lay.n_dense > 0, name
        assert block_steps(lay.dense_idx, lay.shape[1], step=16) is not None, name  # whole aligned blocks
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "x", "--calib", tiny_text_file, "--strategy",
                       "loss-rows", "--col-blocks", *SMALL), "col_blocks")


@pytest.mark.parametrize("method,density", [("unstructured", 0.625), ("sparsegpt", 0.5)])
def test_method_default_dense_ratio(tiny_llama_dir, tiny_text_file, tmp_path, method, density):
    out = tmp_path / method
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--method", method, *SMALL)
    assert res.exit_code == 0, res.output
    assert f"density {density:.4f}" in res.stdout
    v = _run("validate", out)
    assert v.exit_code == 0 and v.stdout.startswith("OK: 14 layers"), v.output
    man = json.loads((out / "spense.json").read_text())
    assert man["config"]["dense_ratio"] == (0.25 if method == "unstructured" else 0.0)


def test_option_conflicts_exit_2(tiny_llama_dir, tiny_text_file, tmp_path):
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, "--method",
                       "sparsegpt", "--dense-ratio", "0.25", *SMALL), "has no dense region")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, "--strategy",
                       "salience-cols", "--axis", "rows", *SMALL), "salience-cols")
    assert not (tmp_path / "o").exists()


def test_pack_command(pruned, tmp_path, monkeypatch):
    from spense.runtime.checkpoint import load_packed

    out, _ = pruned
    dst = tmp_path / "packed"
    monkeypatch.chdir(tmp_path)
    res = _run("pack", out, "--out", "packed")
    assert res.exit_code == 0, res.output
    assert "packed 14 layers" in res.stdout and res.stdout.rstrip().endswith("-> packed")  # the path as given
    man = json.loads((dst / "spense.json").read_text())
    assert man["packed"] is True
    assert (dst / "tokenizer.json").is_file() or (dst / "tokenizer_config.json").is_file()
    # the packed model computes what the dense-with-zeros one computes
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, dtype=torch.float32)
    model = load_packed(dst, dtype=torch.float32, backend="reference")
    ids = torch.randint(0, ref.config.vocab_size, (1, 12))
    torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=1e-4, atol=1e-4)
    # existing output refused, source refused as output
    _assert_error(_run("pack", out, "--out", dst), "already exists")
    _assert_error(_run("pack", out, "--out", out), "source model")
    assert _run("pack", out, "--out", dst, "--overwrite").exit_code == 0
    # a bad --out is refused before the source is read: a source that fails validation still gets the --out error
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "spense.json").write_text("{not json")
    _assert_error(_run("pack", broken, "--out", dst), "already exists")
    _assert_error(_run("generate", broken, "-p", "hi", "-n", "2", "--device", "cpu"), "spense.json is not valid JSON")
    bad_config = tmp_path / "bad-config"  # a packed checkpoint whose config.json is broken
    shutil.copytree(dst, bad_config)
    (bad_config / "config.json").write_text("{bad")
    for cmd in (["validate"], ["eval", "--device", "cpu"]):
        _assert_error(_run(cmd[0], bad_config, *cmd[1:]), "config.json is not valid JSON")


def test_prune_packed(tiny_llama_dir, tiny_text_file, tmp_path):
    out = tmp_path / "p"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--method", "sparsegpt",
               "--packed", *SMALL)
    assert res.exit_code == 0, res.output
    man = json.loads((out / "spense.json").read_text())
    assert man["packed"] is True and man["method"] == "sparsegpt"
    assert not (tmp_path / "p.unpacked").exists()
    _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--packed", *SMALL),
                  "already exists")
    mine = tmp_path / "q.unpacked"  # a folder of the user's where --packed would prune: kept, and named
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "q", "--calib", tiny_text_file, "--packed",
                       *SMALL), r"q\.unpacked exists and --packed would replace it: .*spense pack")
    assert (mine / "notes.txt").read_text() == "mine" and not (tmp_path / "q").exists()


def test_packed_checkpoint_validate_inspect_eval(pruned, tiny_text_file, tmp_path):
    out, _ = pruned
    dst = tmp_path / "packed"
    assert _run("pack", out, "--out", dst).exit_code == 0
    v = _run("validate", dst)
    assert v.exit_code == 0 and v.stdout.startswith("OK: 14 layers"), v.output
    a = _run("inspect", out)
    b = _run("inspect", dst)
    assert a.exit_code == 0 and b.exit_code == 0
    assert a.stdout.splitlines()[1:] == b.stdout.splitlines()[1:]  # same table, other path
    e1 = _run("eval", out, "--text", tiny_text_file, "--seqlen", "32", "--device", "cpu", "--json", "--quiet")
    e2 = _run("eval", dst, "--text", tiny_text_file, "--seqlen", "32", "--device", "cpu", "--json", "--quiet")
    assert e1.exit_code == 0 and e2.exit_code == 0, e2.output
    p1, p2 = json.loads(e1.stdout)["perplexity"], json.loads(e2.stdout)["perplexity"]
    assert abs(p1 - p2) <= 1e-3 * p1
    # a flipped metadata byte is refused by validate
    from safetensors.torch import load_file, save_file

    f = dst / "spense_packed.safetensors"
    t = load_file(f)
    k = next(k for k in t if k.endswith(".meta"))
    t[k] = t[k].clone()
    t[k].view(-1)[0] ^= 0x0F
    save_file(t, f)
    _assert_error(_run("validate", dst), "does not match its SHA-256.*re-create it")


def test_prune_dense_layers_kept_exact_others_24_packs_and_loads(tiny_llama_dir, tiny_text_file, tmp_path):
    """--dense-layers: the named linears are bit-identical to the source, every other one is exactly
    2:4, the manifest records both, and the checkpoint packs and loads."""
    out = tmp_path / "whole"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--method", "sparsegpt",
               "--dense-layers", "0,layers.1.mlp.down_proj", "--block", "16", *SMALL)
    assert res.exit_code == 0, res.output
    man = json.loads((out / "spense.json").read_text())
    src = load_file(str(tiny_llama_dir / "model.safetensors"))
    got = load_file(str(out / "model.safetensors"))
    kept = {n for n, r in man["layers"].items() if r["method"] == "dense"}
    assert kept and kept == {n for n in man["layers"] if ".layers.0." in n or n.endswith("layers.1.mlp.down_proj")}
    assert man["allocation"]["dense_layers"] == "0,layers.1.mlp.down_proj"
    for name, rec in man["layers"].items():
        w = got[rec["weight"]]
        if name in kept:
            assert torch.equal(w, src[rec["weight"]]), name
            assert rec["layout"]["axis"] == "cols" and len(rec["layout"]["dense_idx"]) == w.shape[1]
        else:
            assert rec["method"] == "sparsegpt" and is_nm(w.float(), 2, 4), name
    packed = tmp_path / "whole-packed"
    assert _run("pack", out, "--out", packed).exit_code == 0
    v = _run("validate", packed)
    assert v.exit_code == 0, v.output
    e = _run("eval", packed, "--text", tiny_text_file, "--seqlen", "32", "--device", "cpu", "--json", "--quiet")
    assert e.exit_code == 0, e.output
    assert json.loads(e.stdout)["perplexity"] > 1.0


def test_prune_budget_alloc_greedy_records_allocation(tiny_llama_dir, tiny_text_file, tmp_path):
    out = tmp_path / "alloc"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--method", "spense",
               "--dense-ratio", "0.25", "--budget-alloc", "greedy", "--block", "16", *SMALL)
    assert res.exit_code == 0, res.output
    man = json.loads((out / "spense.json").read_text())
    alloc = man["allocation"]
    assert alloc["budget_alloc"] == "greedy" and alloc["share"] <= 0.25 + 1e-9
    assert set(alloc["choices"]) == set(man["layers"])
    assert man["plan"] and set(man["plan"]) == set(man["layers"])


@pytest.mark.parametrize("args, pattern", [
    (["--method", "dense", "--dense-layers", "0"], "dense-layers with --method dense"),
    (["--method", "sparsegpt", "--dense-layers", "0,0"], "twice"),
    (["--method", "sparsegpt", "--dense-layers", "nosuchlayer"], "no"),
    (["--method", "sparsegpt", "--dense-layers", "0-99"], "layer"),
])
def test_dense_layers_bad_spec_exit_2(tiny_llama_dir, tiny_text_file, tmp_path, args, pattern):
    out = tmp_path / "bad"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, *args, "--block", "16", *SMALL)
    _assert_error(res, pattern)
    assert not out.exists()


def test_default_prune_spreads_the_budget_with_the_allocator(tiny_llama_dir, tiny_text_file, tmp_path):
    """`spense prune` with no placement option uses the allocator (mixed axes), the study's best; any
    placement option keeps the uniform per-linear ratio."""
    from spense.cli.prune import default_allocation

    assert default_allocation("spense", None, None, None, None, None) == ("greedy", "mixed")
    assert default_allocation("spense", None, "loss-rows", None, None, None) == ("uniform", None)
    assert default_allocation("spense", None, None, None, None, "0-1") == ("uniform", None)
    assert default_allocation("spense", None, None, None, None, None, col_blocks=True) == ("uniform", None)
    assert default_allocation("sparsegpt", None, None, None, None, None) == ("uniform", None)
    assert default_allocation("spense", "uniform", None, None, None, None) == ("uniform", None)
    assert default_allocation("spense", None, None, None, None, None, dense_ratio=0.0) == ("uniform", None)
    assert default_allocation("spense", None, None, None, None, None, dense_ratio=0.5) == ("greedy", "mixed")
    out = tmp_path / "o"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--block", "16", *SMALL)
    assert res.exit_code == 0, res.output
    assert "spread by the allocator, mixed axes" in res.stdout
    man = json.loads((out / "spense.json").read_text())
    assert man["allocation"]["budget_alloc"] == "greedy" and man["allocation"]["axes"] == "mixed"


def test_unwritable_outputs_packed_sources_and_bad_layouts_refused_up_front(pruned, tiny_llama_dir, tiny_text_file,
                                                                             tmp_path):
    """Refused in one line before any work, nothing written: an output under a file, an --eval text that is
    missing, a packed checkpoint as the model to prune (its linears are not dense weights), demo's --json on a
    directory and --out-dir on a file; and a checkpoint whose layout has block 0 (validate)."""
    import shutil

    afile = tmp_path / "afile"
    afile.write_text("x")
    _assert_error(_run("prune", tiny_llama_dir, "--out", afile / "sub", "--calib", tiny_text_file, *SMALL),
                  "cannot write output .* is not a directory")
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, "--eval",
                       tmp_path / "nope.txt", *SMALL), "nope.txt")
    assert afile.read_text() == "x" and not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()
    out, _ = pruned
    packed = tmp_path / "packed"
    assert _run("pack", out, "--out", packed).exit_code == 0
    _assert_error(_run("prune", packed, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL),
                  "is a packed Spense checkpoint: prune needs dense weights")
    demo = ("demo", "--quick", "--calib", tiny_text_file, "--text", tiny_text_file, "--device", "cpu")
    _assert_error(_run(*demo, "--model", packed), "packed Spense checkpoint: demo needs dense weights")
    (tmp_path / "adir").mkdir()
    _assert_error(_run(*demo, "--model", tiny_llama_dir, "--json", tmp_path / "adir"),
                  "cannot write --json .* is a directory")
    _assert_error(_run(*demo, "--model", tiny_llama_dir, "--out-dir", afile), "cannot write --out-dir .* not a dir")
    assert not (tmp_path / "o").exists() and list((tmp_path / "adir").iterdir()) == []
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    man = json.loads((bad / "spense.json").read_text())
    next(iter(man["layers"].values()))["layout"]["block"] = 0
    (bad / "spense.json").write_text(json.dumps(man))
    _assert_error(_run("validate", bad), "block must be a positive integer")


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "spense.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "prune" in res.stdout, res.stderr


def test_prune_reports_the_dense_share_it_reached(tiny_llama_dir, tiny_text_file, tmp_path):
    """Dense regions are whole blocks: a ratio that does not fall on one is rounded down per layer, and the run
    says what it reached (and warns where that is well below what was asked)."""
    args = ["prune", tiny_llama_dir, "--calib", tiny_text_file, "--block", "16", "--budget-alloc", "uniform", *SMALL]
    res = _run(*args, "--out", tmp_path / "a", "--dense-ratio", "0.25")  # 16 of 64 (or 32 of 128): exact
    assert res.exit_code == 0 and "dense share 0.250" in res.stdout and "rounds down" not in res.output, res.output
    res = _run(*args, "--out", tmp_path / "b", "--dense-ratio", "0.3")  # 19.2 of 64 -> 16, 38.4 of 128 -> 32
    assert res.exit_code == 0 and "dense share 0.250" in res.stdout, res.output
    assert "the dense regions hold 0.250 of the weights, not 0.3: each layer's rounds down to whole blocks of " \
           "--block 16" in res.stderr
