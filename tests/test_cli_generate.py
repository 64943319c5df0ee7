"""``spense generate`` on CPU (the engine's reference backend, typer CliRunner): one prompt or a file of them,
sampling, --chat, one-line errors on bad input, Ctrl-C."""


def test_generate_cli(tiny_llama_dir, tmp_path):
    from typer.testing import CliRunner

    from spense.cli import app

    r = CliRunner().invoke(app, ["generate", str(tiny_llama_dir), "--prompt", "The game", "-n", "8",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "The game" in r.output and "tokens/s" in r.output and "reference backend" in r.output
    pf = tmp_path / "p.txt"
    pf.write_text("The game\nIn 1990 the\n")
    r = CliRunner().invoke(app, ["generate", str(tiny_llama_dir), "--prompts-file", str(pf), "-n", "6",
                                 "--device", "cpu", "-t", "0.8", "--top-p", "0.9"])
    assert r.exit_code == 0, r.output
    assert r.output.count("--- ") == 2
    r = CliRunner().invoke(app, ["generate", "qwen3-tiny", "--prompt", "x", "--device", "cpu"])
    assert r.exit_code == 2 and "no tokenizer" in r.output


def test_generate_chat_wraps_each_prompt_in_the_chat_template(tiny_llama_dir, tmp_path, monkeypatch):
    """--chat: the prompt goes in as a user turn of the tokenizer's chat template and the answer prints alone; a
    tokenizer without a template is refused in one line."""
    import shutil

    from typer.testing import CliRunner

    import spense.engine.generate as gen
    from spense.cli import app
    from spense.data import load_tokenizer

    args = ["generate", "--prompt", "The game", "-n", "4", "--device", "cpu", "--chat"]
    r = CliRunner().invoke(app, [args[0], str(tiny_llama_dir), *args[1:]])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "--chat: " in r.output and "no chat template" in r.output
    d = tmp_path / "chat"
    shutil.copytree(tiny_llama_dir, d)
    (d / "chat_template.jinja").write_text("{% for m in messages %}<u> {{ m['content'] }} </u>{% endfor %}<a>")
    seen = []
    real = gen.Engine.generate
    monkeypatch.setattr(gen.Engine, "generate", lambda self, prompts, *a, **k: seen.append(prompts) or
                        real(self, prompts, *a, **k))
    r = CliRunner().invoke(app, [args[0], str(d), *args[1:]])
    assert r.exit_code == 0, r.output
    tok = load_tokenizer(d)
    assert seen == [[tok.encode("<u> The game </u><a>", add_special_tokens=False)]]
    assert not r.stdout.startswith("The game")  # the answer alone


def test_generate_cli_bad_input_one_line(tiny_llama_dir, tmp_path):
    """Bad prompts files, blank prompts, non-finite temperature and cache lengths: one-line errors (exit 2,
    no traceback); what fits runs (the tiny model has 256 positions, prompts take 64-slot blocks)."""
    from typer.testing import CliRunner

    from spense.cli import app

    binary = tmp_path / "w.safetensors"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    words = " ".join(["one two three four"] * 3)
    cases = [(["--prompts-file", str(binary)], "is not UTF-8 text"),
             (["--prompts-file", str(tmp_path)], "is a directory"),
             (["--prompts-file", str(tmp_path / "none.txt")], "does not exist"),
             (["-p", "   "], "empty prompt"),
             (["-p", "x", "-t", "nan"], "--temperature must be a finite number >= 0 (0: greedy), got nan"),
             (["-p", "x", "-t", "-1"], "--temperature must be a finite number >= 0 (0: greedy), got -1"),
             (["-p", "x", "-t", "0.7", "--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
             (["-p", "x", "-t", "0.7", "--top-p", "0"], "--top-p must be in (0, 1], got 0"),
             (["-p", "x", "--max-len", "0"], "--max-len must be >= 1"),
             (["-p", words, "--max-len", "4", "-n", "4"], "new tokens do not fit --max-len 4"),
             (["-p", "x", "-n", "193"], "193 new tokens do not fit the model's 256 positions: at most 192")]
    for args, msg in cases:
        r = CliRunner().invoke(app, ["generate", str(tiny_llama_dir), *args, "--device", "cpu"])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)
    r = CliRunner().invoke(app, ["generate", str(tiny_llama_dir), "-p", "x", "--max-len", "5000", "-n", "2",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "--max-len 5000 exceeds the model's 256 positions: using 256" in r.output
    assert "keeping the last" not in r.output
    r = CliRunner().invoke(app, ["generate", str(tiny_llama_dir), "-p", "x", "-n", "192", "--device", "cpu"])
    assert r.exit_code == 0 and "192 tokens" in r.output, r.output


def test_generate_ctrl_c_stops_cleanly(tiny_llama_dir, monkeypatch):
    """Ctrl-C during ``spense generate``: the tokens so far stay printed, one 'interrupted' line, exit 130,
    no traceback."""
    from typer.testing import CliRunner

    from spense.cli import app
    from spense.engine import generate as gen_mod

    real = gen_mod.Engine.stream
    calls = {"n": 0}

    def stream(self, *a, **kw):
        for item in real(self, *a, **kw):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(gen_mod.Engine, "stream", stream)
    r = CliRunner().invoke(app, ["generate", str(tiny_llama_dir), "--prompt", "The game", "-n", "20",
                                 "--device", "cpu"])
    assert r.exit_code == 130, r.output
    assert "interrupted; 2 tokens" in r.output and "Traceback" not in r.output
