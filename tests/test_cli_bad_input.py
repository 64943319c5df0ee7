"""Bad input the CLI refuses in one line, found by trying it as a user would: a demo's --json over its own inputs,
seeds past torch's range, config.json that does not match the weights, no prunable linear left, a bench --name
that leaves --out, NaN weights given to generate, and a one-token eval window."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

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
    out = tmp_path / "ckpts"  # a --json inside --out-dir would replace a checkpoint's config.json
    _assert_error(_run(*demo, "--out-dir", out, "--json", out / "sparsegpt-2-4" / "config.json"),
                  r"--json .* is inside --out-dir")
    _assert_error(_run(*demo, "--out-dir", out, "--json", out), r"--json .* is inside --out-dir")
    assert not out.exists()


def test_demo_checks_its_numbers_before_the_model(tmp_path):
    """The demo's counts are refused before it looks for the model (here none exists), so a typo costs no load."""
    demo = ["demo", "--model", tmp_path / "no-model", "--device", "cpu", "-q"]
    for flag, bad, least in (("--nsamples", "0", 1), ("--seqlen", "1", 2), ("--max-eval-windows", "0", 1)):
        _assert_error(_run(*demo, flag, bad), rf"{flag} must be >= {least}, got {bad}")
    for bad in ("0", "6"):
        _assert_error(_run(*demo, "--block", bad), rf"block must be a positive multiple of 4 .*got {bad}$")
    _assert_error(_run(*demo, "--seed", "-5"), r"seed must be an integer in 0\.\.2\*\*63-1, got -5")


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


def test_unknown_architecture_and_missing_tokenizer(tiny_llama_dir, tiny_text_file, tmp_path):
    """transformers explains both over several lines: the user gets its first line, or ours, on one line."""
    alien = _edited_config(tiny_llama_dir, tmp_path / "alien", model_type="no_such_arch")
    for cmd in (["eval", alien, "--text", tiny_text_file, "--seqlen", "16", "--device", "cpu", "-q"],
                ["generate", alien, "-p", "hi", "-n", "2", "--device", "cpu"]):
        res = _run(*cmd)
        err = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert res.exit_code == 2 and len(err) == 1 and "Traceback" not in res.output, res.output
        assert "no_such_arch" in err[0] and res.stderr.strip().splitlines()[-1] == err[0], res.stderr
    bare = tmp_path / "bare"
    shutil.copytree(tiny_llama_dir, bare)
    for f in bare.glob("*"):
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            f.unlink()
    _assert_error(_run("prune", bare, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL),
                  r"no tokenizer in .*bare: it needs tokenizer\.json, tokenizer\.model or vocab\.json")
    assert not (tmp_path / "o").exists()


def test_a_model_with_its_own_code_is_refused_without_running_it(tiny_llama_dir, tiny_text_file, tmp_path):
    """A config.json with an ``auto_map`` asks transformers to import the folder's own modules: refused in one
    line with no prompt, and the folder's code is never run (it would exit the test run)."""
    d = _edited_config(tiny_llama_dir, tmp_path / "custom", model_type="xcustom",
                       auto_map={"AutoConfig": "configuration_x.XConfig",
                                 "AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    for name in ("configuration_x.py", "modeling_x.py"):
        (d / name).write_text("raise SystemExit('the folder's own code ran')\n")
    for cmd in (["eval", d, "--text", tiny_text_file, "--seqlen", "16", "--device", "cpu", "-q"],
                ["prune", d, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL],
                ["generate", d, "-p", "hi", "-n", "2", "--device", "cpu"]):
        res = _run(*cmd)
        _assert_error(res, r"contains custom code")
        assert "[y/N]" not in res.output
    assert not (tmp_path / "o").exists()


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
    # the error alone: the CPU's "reference backend" warning comes only once every refusal has passed
    _assert_error(res, r"^error: weight model\.layers\.1\.mlp\.down_proj\.weight contains 1 NaN/Inf values$")


def test_generate_refusals_before_any_model_is_built(tiny_llama_dir):
    """A random built-in shape (qwen3-8b would be built whole on the CPU first), an empty model path, and --top-p
    without sampling are refused at once, in one line."""
    for spec in ("qwen3-8b", "qwen3-32b[:2]", ""):
        _assert_error(_run("generate", spec, "-p", "hi", "-n", "2", "--device", "cpu"),
                      r"is no model with a tokenizer .*`spense bench` times it")
    _assert_error(_run("generate", tiny_llama_dir, "-p", "hi", "-n", "2", "--device", "cpu", "--top-p", "0.5"),
                  r"--top-p applies only when sampling")
    _assert_error(_run("eval", "", "--device", "cpu"), r"empty model path")
    _assert_error(_run("generate", tiny_llama_dir, "-p", "caf\udce9", "-n", "2", "--device", "cpu"),
                  r"--prompt is not UTF-8 text")  # bytes that are not UTF-8 come through argv as lone surrogates
    _assert_error(_run("generate", tiny_llama_dir, "--prompts-file", "/dev/zero", "-n", "2", "--device", "cpu"),
                  r"/dev/zero is a device, not a text file")


def test_generate_one_token_has_no_decode_rate(tiny_llama_dir):
    """One new token comes from the prefill alone: no decode step, so no rate (was "nan tokens/s")."""
    res = _run("generate", tiny_llama_dir, "-p", "hi", "-n", "1", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "1 tokens, no decode step to time, prefill" in res.stderr and "nan" not in res.stderr


def test_eval_seqlen_below_two(tiny_llama_dir, tiny_text_file):
    _assert_error(_run("eval", tiny_llama_dir, "--text", tiny_text_file, "--seqlen", "1", "--device", "cpu"),
                  r"--seqlen must be >= 2, got 1")
    res = _run("eval", tiny_llama_dir, "--text", tiny_text_file, "--seqlen", "99999", "--max-windows", "0",
               "--device", "cpu")  # refused before the model is loaded: no clipping warning first
    _assert_error(res, r"--max-windows must be >= 1, got 0")


def test_usage_errors_are_one_line(capsys):
    """A mistyped flag, a bad option value, a missing argument or an unknown command: one red line, status 2."""
    from spense.cli import run

    cases = [(["prune", "--bogus"], r"No such option: --bogus .*\(see 'spense prune -h'\)"),
             (["prune", "--method", "nope", "m", "--out", "o"], r"Invalid value for '--method': 'nope' is not one of"),
             (["prune"], r"Missing argument 'model'\. \(see 'spense prune -h'\)"),
             (["nosuch"], r"No such command 'nosuch'\. \(see 'spense -h'\)"),
             (["generate", "m", "-n", "abc"], r"Invalid value for '--max-new-tokens'"),
             (["prune", "m", "--out"], r"Option '--out' requires an argument\. \(see 'spense prune -h'\)")]
    for args, pattern in cases:
        assert run(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert re.search(pattern, err), err
    assert run([]) == 2  # no arguments: the help, as before
    out, err = capsys.readouterr()
    assert "Usage: spense" in out + err and "error" not in out + err
    assert run(["eval", "-h"]) == 0 and "Usage: spense eval" in capsys.readouterr().out


def test_placement_options_the_run_would_ignore(tmp_path):
    """--strategy/--axis/--salience without a dense region to place, or beside the allocator, are refused, and
    before the model is even looked for: option checks come first."""
    out = tmp_path / "o"
    cases = [(["--method", "magnitude", "--strategy", "loss-rows"], r"--strategy loss-rows places the dense region "
              r"of --method spense; method 'magnitude' has none"),
             (["--method", "sparsegpt", "--axis", "rows"], r"--axis rows places .* method 'sparsegpt' has none"),
             (["--method", "wanda", "--salience", "act"], r"--salience act places .* method 'wanda' has none"),
             (["--strategy", "random", "--budget-alloc", "greedy"], r"by hand and --budget-alloc greedy by measured"),
             (["--strategy", "first", "--salience", "act"], r"strategy 'first' does not read it"),
             (["--strategy", "random", "--axes", "cols"], r"--strategy random places .* by hand and --axes cols"),
             (["--axis", "rows", "--axes", "mixed"], r"--axis rows places .* --axes mixed picks each one's axis"),
             (["--method", "dense", "--dense-ratio", "0.3"], r"--dense-ratio 0.3 does not apply to --method dense"),
             (["--seqlen", "1"], r"--seqlen must be >= 2, got 1")]
    for extra, pattern in cases:
        _assert_error(_run("prune", tmp_path / "no-such-model", "--out", out, *extra), pattern)
    assert not out.exists()


def test_short_eval_text_fails_before_pruning(tiny_llama_dir, tiny_text_file, tmp_path):
    out = tmp_path / "o"
    short = tmp_path / "short.txt"
    short.write_text("a few words", encoding="utf-8")
    _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, *SMALL, "--eval", short),
                  r"evaluation text has \d+ tokens, fewer than one window")
    assert not out.exists() and not (tmp_path / "o.partial").exists()


def test_bench_on_the_cpu_refuses_what_cannot_fit():
    """On the CPU a built-in shape is built in float32: qwen3-8b (about 33 GB) is refused where less is available,
    before any weight is made; a model folder is not estimated."""
    from spense.cli.bench import check_host_memory
    from spense.errors import InputError

    with pytest.raises(InputError, match=r"qwen3-8b on the CPU needs 3\d\.\d GB for its float32 weights"):
        check_host_memory("qwen3-8b", available=int(24e9))
    check_host_memory("qwen3-8b[:2]", available=int(24e9))
    check_host_memory("qwen3-tiny", available=int(1e9))


def test_out_of_memory_is_one_line(capsys):
    """An allocation that fails (torch's CPU allocator raises a RuntimeError) ends a command in one line."""
    import typer

    from spense.cli.app import handle_errors, out_of_memory

    @handle_errors
    def cmd():
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 21990232555520 bytes.\nmore lines")

    with pytest.raises(typer.Exit) as e:
        cmd()
    err = capsys.readouterr().err
    assert e.value.exit_code == 1 and err.startswith("error: out of memory: ") and len(err.splitlines()) == 1
    assert not out_of_memory(RuntimeError("shape mismatch")) and out_of_memory(MemoryError())

    @handle_errors
    def other():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        other()


def test_a_full_disk_is_one_line_and_sigterm_ends_as_ctrl_c_does(capsys):
    """ENOSPC, as OSError or as safetensors' error text, ends a command in one line; SIGTERM (timeout, Slurm) raises
    KeyboardInterrupt inside the command, so its temp files are removed as after Ctrl-C."""
    import errno
    import os
    import signal
    import time

    import typer

    from spense.cli.app import handle_errors

    def failing(exc):
        @handle_errors
        def prune():
            raise exc
        return prune

    for exc in (OSError(errno.ENOSPC, "No space left on device"),
                RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: \"No space "
                             "left on device\" })")):
        with pytest.raises(typer.Exit) as e:
            failing(exc)()
        err = capsys.readouterr().err
        assert e.value.exit_code == 1 and len(err.splitlines()) == 1, err
        assert err.startswith("error: no space left on device: free some and rerun") and "resumes" in err
    with pytest.raises(PermissionError):
        failing(PermissionError(errno.EACCES, "denied"))()
    cleaned = []

    @handle_errors
    def demo():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler's KeyboardInterrupt ends the sleep at once
        finally:
            cleaned.append(1)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(typer.Exit) as e:
        demo()
    assert e.value.exit_code == 143 and cleaned and "interrupted" in capsys.readouterr().err  # 128 + SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before  # put back after the command


def test_a_model_too_large_for_the_host_is_one_line(tiny_llama_dir, tiny_text_file, monkeypatch):
    from spense import hostmem

    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: 1000)
    res = _run("eval", tiny_llama_dir, "--text", tiny_text_file, "--device", "cpu")
    _assert_error(res, r"needs 0\.0 GB of host memory; 0\.0 GB are available \(free memory and swap\)\. Use a machine "
                       r"with more memory, or a smaller model\.$")


def test_a_tokenizer_larger_than_the_model_vocabulary(tiny_llama_dir, tiny_text_file, tmp_path):
    """A tokenizer of another model: one line naming the mismatch in prune, eval and generate, not an index error
    from the embedding."""
    from safetensors.torch import load_file, save_file

    top = 8  # the tokenizer's ids run far past it
    small = _edited_config(tiny_llama_dir, tmp_path / "small", vocab_size=top)

    sd = load_file(small / "model.safetensors")
    save_file({k: (v[:top].contiguous() if v.shape[0] == sd["model.embed_tokens.weight"].shape[0] else v)
               for k, v in sd.items()}, small / "model.safetensors")
    want = rf"the tokenizer gives token id \d+, but the model embeds only ids 0\.\.{top - 1} .*do not match$"
    _assert_error(_run("eval", small, "--text", tiny_text_file, "--seqlen", "16", "--device", "cpu", "-q"), want)
    _assert_error(_run("prune", small, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL), want)
    _assert_error(_run("generate", small, "-p", tiny_text_file.read_text()[:400], "-n", "2", "--device", "cpu"),
                  want)
    assert not (tmp_path / "o").exists()


def test_a_second_run_writing_the_same_output_is_one_line(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    """Two prunes (or packs) into one --out would share OUT.partial and race on the swap: while one runs, the
    other is refused in one line naming it, before it loads anything, and leaves no file behind."""
    from conftest import lock_held_elsewhere

    out = tmp_path / "o"
    want = r"another spense run \(pid \d+\) is writing .*o: wait for it to end, or choose another output$"
    with lock_held_elsewhere(out):
        _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, *SMALL), want)
        _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--packed", *SMALL,
                           "--overwrite"), want)
        _assert_error(_run("pack", tiny_llama_dir, "--out", out), want)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".o.lock"]
    with lock_held_elsewhere(tmp_path / "o.unpacked"):  # where `--packed` prunes, under a fixed name
        _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--packed", *SMALL),
                      r"pid \d+\) is writing .*o\.unpacked: wait")
    monkeypatch.chdir(tmp_path)  # OUT given relative, as a user types it
    res = _run("prune", tiny_llama_dir, "--out", "o", "--calib", tiny_text_file, "--packed", *SMALL)
    assert res.exit_code == 0, res.output  # the lock of OUT held through the prune and the pack: no clash with itself
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_ctrl_c_in_the_evaluation_after_the_checkpoint_is_written(tiny_llama_dir, tiny_text_file, tmp_path,
                                                                   monkeypatch):
    """`prune --eval` stopped in its evaluation: the line says the checkpoint is complete and how to evaluate
    it, not to rerun the prune (which would refuse the existing output)."""
    from spense import evaluate

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "perplexity", stopped)
    out = tmp_path / "o"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--eval", tiny_text_file,
               *SMALL)
    assert res.exit_code == 130, res.output
    assert res.stderr.strip() == (f"error: interrupted in the evaluation; the checkpoint {out.resolve()} was written "
                                  f"in full (`spense eval {out.resolve()} --text {tiny_text_file} --seqlen "
                                  f"{SMALL[SMALL.index('--seqlen') + 1]}` evaluates it)")
    assert _run("validate", out).exit_code == 0


def test_ctrl_c_in_the_pack_of_prune_packed(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    """Stopped while packing, `prune --packed` names the complete pruned checkpoint and the command that packs it:
    rerunning the prune would be refused (OUT.unpacked exists)."""
    from spense.runtime import checkpoint

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "pack_checkpoint", stopped)
    out = tmp_path / "o"
    res = _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, "--packed", *SMALL)
    assert res.exit_code == 130, res.output
    assert res.stderr.strip() == (f"error: interrupted in the pack; the pruned checkpoint {out}.unpacked is complete: "
                                  f"`spense pack {out}.unpacked --out {out}` packs it")
    monkeypatch.undo()
    assert _run("pack", f"{out}.unpacked", "--out", out).exit_code == 0


def test_out_given_with_an_unexpanded_home(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    """`--out=~/x` reaches spense with the ~ unexpanded (the shell expands it only after a space): it is the home's."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "..")
    res = _run("prune", tiny_llama_dir, "--out=~/p", "--calib", tiny_text_file, "--packed", *SMALL)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"] and not (tmp_path / ".." / "~").exists()


@pytest.mark.parametrize("opt", ["--calib", "--eval"])
def test_prune_overwrite_never_deletes_its_own_input_text(opt, tiny_llama_dir, tiny_text_file, tmp_path):
    """A text the run reads, kept inside the checkpoint that --overwrite would replace: refused in one line before
    any work, the text and the checkpoint left as they were."""
    out = tmp_path / "ck"
    assert _run("prune", tiny_llama_dir, "--out", out, "--calib", tiny_text_file, *SMALL).exit_code == 0
    inside = out / "text.txt"
    shutil.copy(tiny_text_file, inside)
    before = {p.name: _digest(p) for p in out.iterdir()}
    calib = inside if opt == "--calib" else tiny_text_file
    extra = ("--eval", inside) if opt == "--eval" else ()
    _assert_error(_run("prune", tiny_llama_dir, "--out", out, "--calib", calib, *extra, *SMALL, "--overwrite"),
                  rf"^error: {opt} .*text.txt is inside the output .*ck, which the run writes; move it or choose "
                  "another --out$")
    assert {p.name: _digest(p) for p in out.iterdir()} == before


@pytest.mark.parametrize("damage", ["weights", "manifest"])
def test_a_damaged_checkpoint_is_not_pruned_as_a_source(damage, tiny_llama_dir, tiny_text_file, tmp_path):
    """A Spense checkpoint given as the model to prune (or to the demo) is checked as ``spense validate`` checks it:
    a changed tensor or a cut manifest is refused in one line, before any work and with no output."""
    ck = tmp_path / "ck"
    assert _run("prune", tiny_llama_dir, "--out", ck, "--calib", tiny_text_file, *SMALL).exit_code == 0
    if damage == "weights":
        st = ck / "model.safetensors"
        raw = bytearray(st.read_bytes())
        raw[-3:] = bytes(b ^ 0xFF for b in raw[-3:])
        st.write_bytes(bytes(raw))
        want = r"does not match its SHA-256"
    else:
        mf = ck / "spense.json"
        mf.write_text(mf.read_text()[:200])
        want = r"spense\.json"
    _assert_error(_run("prune", ck, "--out", tmp_path / "o", "--calib", tiny_text_file, *SMALL), want)
    _assert_error(_run("demo", "--quick", "--model", ck, "--calib", tiny_text_file, "--text", tiny_text_file,
                       "--device", "cpu", "-q"), want)
    assert not (tmp_path / "o").exists()


def test_axis_rows_without_a_strategy_names_the_strategies_that_place_rows(tiny_llama_dir, tiny_text_file, tmp_path):
    """``--axis rows`` alone: the default strategy (salience-cols) keeps columns, so the message names the ones that
    place rows instead of blaming a strategy the user never gave."""
    _assert_error(_run("prune", tiny_llama_dir, "--out", tmp_path / "o", "--calib", tiny_text_file, "--method",
                       "spense", "--axis", "rows", *SMALL),
                  r"^error: --axis rows needs a --strategy that places rows \(loss-rows, random, first\): the default "
                  "strategy, salience-cols, keeps columns$")
    assert not (tmp_path / "o").exists()


def test_validate_warns_of_a_cut_tokenizer_or_generation_config(tiny_llama_dir, tiny_text_file, tmp_path):
    """The side files are not in the manifest, so a cut one does not fail ``validate``; it is named in a warning."""
    ck = tmp_path / "ck"
    assert _run("prune", tiny_llama_dir, "--out", ck, "--calib", tiny_text_file, *SMALL).exit_code == 0
    clean = _run("validate", ck)
    assert clean.exit_code == 0 and "not valid JSON" not in clean.output, clean.output
    tj = ck / "tokenizer.json"
    tj.write_text(tj.read_text()[:100])
    res = _run("validate", ck)
    assert res.exit_code == 0 and re.search(r"tokenizer\.json is not valid JSON", res.stderr), res.output
    packed = _run("pack", ck, "--out", tmp_path / "pk")  # copied over as it is: said again
    assert packed.exit_code == 0 and re.search(r"pk/tokenizer\.json is not valid JSON", packed.stderr), packed.output
