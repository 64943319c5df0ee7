"""Bad input the CLI refuses in one line, found by trying it as a user would: a demo's --json over its own inputs,
seeds past torch's range, config.json that does not match the weights, no prunable linear left, a bench --name
that leaves --out, NaN weights given to generate, and a one-token eval window."""

from __future__ import annotations

import hashlib
import json
import shutil

from safetensors.torch import load_file, save_file
from test_cli import SMALL, _assert_error, _run


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_json_never_replaces_an_input_or_a_foreign_file(tiny_llama_dir, tiny_text_file, tmp_path):
    demo = ["demo", "--model", tiny_llama_dir, "--quick", "--calib", tiny_text_file, "--text", tiny_text_file,
            "--nsamples", "1", "--seqlen", "16", "--max-eval-windows", "1", "--device", "cpu", "-q"]
    before = _digest(tiny_text_file)
    _assert_error(_run(*demo, "--json", tiny_text_file), r"--json .* is an input of this demo")
    _assert_error(_run(*demo, "--json", tiny_llama_dir / "config.json"), r"--json .* is an input of this demo")
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes")
    _assert_error(_run(*demo, "--json", mine), r"exists and is not an earlier `spense demo --json` file")
    assert _digest(tiny_text_file) == before and mine.read_text() == "my notes"


def test_seed_out_of_range(tiny_llama_dir, tiny_text_file, tmp_path):
    big = str(2**64)
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL,
                       "--seed", big), r"seed must be an integer in 0\.\.2\*\*63-1")
    _assert_error(_run("generate", tiny_llama_dir, "-p", "hi", "-n", "2", "--device", "cpu", "--seed", "-1"),
                  r"--seed must be an integer in 0\.\.2\*\*63-1, got -1")
    assert not (tmp_path / "o").exists()


def _edited_config(src, dst, **changes):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_config_that_does_not_match_the_weights(tiny_llama_dir, tiny_text_file, tmp_path):
    wide = _edited_config(tiny_llama_dir, tmp_path / "wide", hidden_size=128, head_dim=32)
    _assert_error(_run("eval", wide, "--text", tiny_text_file, "--seqlen", "16", "--max-windows", "1", "--device",
                       "cpu", "-q"), r"cannot load model from .*wide")
    deep = _edited_config(tiny_llama_dir, tmp_path / "deep", num_hidden_layers=3)  # layer 2 would be random
    _assert_error(_run("eval", deep, "--text", tiny_text_file, "--seqlen", "16", "--max-windows", "1", "--device",
                       "cpu", "-q"), r"weights lack \d+ tensors that its config\.json asks for .*layers\.2\.")


def test_no_prunable_linear_left(tiny_llama_dir, tiny_text_file, tmp_path):
    # the tiny model's linears read 64 or 128 features: a dense block of 256 leaves none to prune
    for extra in ([], ["--budget-alloc", "uniform"]):
        _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL,
                           "--block", "256", *extra), r"no linear layer of this model can be pruned")
    assert not (tmp_path / "o").exists()


def test_bench_name_stays_inside_out(tmp_path):
    for name in ("../escaped", "", ".hidden", "a/b"):
        _assert_error(_run("bench", "qwen3-tiny", "--out", tmp_path / "bo", "--name", name, "--device", "cpu"),
                      r"--name .*plain file name stem")
    assert not (tmp_path / "escaped.md").exists()


def test_generate_refuses_nan_weights(tiny_llama_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_llama_dir, bad)
    sd = load_file(str(bad / "model.safetensors"))
    sd["model.layers.1.mlp.down_proj.weight"][0, 0] = float("nan")
    save_file(sd, str(bad / "model.safetensors"), metadata={"format": "pt"})
    res = _run("generate", bad, "-p", "hi", "-n", "2", "--device", "cpu")
    # on a CPU the one warning that it runs the reference backend comes first, then the one-line error
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert [ln.split(":")[0] for ln in lines] == ["warning", "error"], lines
    assert lines[1] == "error: weight model.layers.1.mlp.down_proj.weight contains 1 NaN/Inf values"


def test_eval_seqlen_below_two(tiny_llama_dir, tiny_text_file):
    _assert_error(_run("eval", tiny_llama_dir, "--text", tiny_text_file, "--seqlen", "1", "--device", "cpu"),
                  r"--seqlen must be >= 2, got 1")
