"""Tests for spense.data: text reading, tokenisation, windows, default paths."""

from __future__ import annotations

import pytest
import torch

from spense import data
from spense.errors import InputError


# -- read_text ----------------------------------------------------------------------------------
def test_read_text_file(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello world\n", encoding="utf-8")
    assert data.read_text(f) == "hello world\n"


def test_read_text_folder_sorted_and_joined(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("B", encoding="utf-8")
    (tmp_path / "a.txt").write_text("A", encoding="utf-8")
    (tmp_path / "sub" / "c.txt").write_text("C", encoding="utf-8")
    (tmp_path / "ignored.md").write_text("X", encoding="utf-8")
    assert data.read_text(tmp_path) == "A\n\nB\n\nC"


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_read_text_empty_file(tmp_path, content):
    f = tmp_path / "e.txt"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        data.read_text(f)


def test_read_text_missing_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        data.read_text(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="no \\*.txt"):
        data.read_text(tmp_path)


def test_read_text_not_utf8(tmp_path):
    f = tmp_path / "bin.txt"
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="UTF-8"):
        data.read_text(f)


def test_read_text_bounded(tmp_path):
    """A device is refused at once, a file or a pipe past the limit is refused after at most limit + 1 bytes, and
    line ends read as text mode reads them."""
    import os

    with pytest.raises(InputError, match="is a device"):
        data.read_text("/dev/zero")
    f = tmp_path / "big.txt"
    f.write_text("x" * 100, encoding="utf-8")
    with pytest.raises(InputError, match="more than"):
        data.read_text_file(f, limit=99)
    assert data.read_text_file(f, limit=100) == "x" * 100
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the writer: more than the limit, then gone
        try:
            with open(fifo, "wb", buffering=0) as w:
                w.write(b"y" * 4096)
        finally:
            os._exit(0)
    try:
        with pytest.raises(InputError, match="gave more than"):
            data.read_text_file(fifo, limit=1000)
    finally:
        os.waitpid(pid, 0)
    (tmp_path / "crlf.txt").write_bytes(b"a\r\nb\rc\n")
    assert data.read_text(tmp_path / "crlf.txt") == "a\nb\nc\n"


def test_text_fingerprint():
    assert data.text_fingerprint("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert data.text_fingerprint("abc") != data.text_fingerprint("abd")


# -- windows --------------------------------------------------------------------------------------
def test_calibration_windows_shape_and_content():
    ids = torch.arange(1000)
    w = data.calibration_windows(ids, nsamples=8, seqlen=32, seed=0)
    assert w.shape == (8, 32) and w.dtype == torch.long
    # every window is a contiguous slice starting in [0, T - seqlen - 1]
    assert torch.equal(w - w[:, :1], torch.arange(32).expand(8, 32))
    assert int(w[:, 0].min()) >= 0 and int(w[:, 0].max()) <= 1000 - 32 - 1


def test_calibration_windows_deterministic_and_seeded():
    ids = torch.randint(0, 500, (5000,), generator=torch.Generator().manual_seed(1))
    a = data.calibration_windows(ids, 16, 64, seed=3)
    torch.manual_seed(123)  # global RNG must not matter
    b = data.calibration_windows(ids, 16, 64, seed=3)
    c = data.calibration_windows(ids, 16, 64, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_calibration_windows_exact_minimum_length():
    ids = torch.arange(33)
    w = data.calibration_windows(ids, 4, 32, seed=0)
    assert torch.equal(w, torch.arange(32).expand(4, 32))  # only start 0 is allowed
    with pytest.raises(InputError, match="has 32 tokens but 33 are needed"):
        data.calibration_windows(torch.arange(32), 4, 32, seed=0)


def test_calibration_windows_bad_args():
    with pytest.raises(InputError, match="nsamples"):
        data.calibration_windows(torch.arange(100), 0, 8, seed=0)
    with pytest.raises(InputError, match="1-D"):
        data.calibration_windows(torch.zeros(2, 3, 4, dtype=torch.long), 1, 2, seed=0)


def test_eval_windows_non_overlapping_drops_tail():
    ids = torch.arange(103)
    w = data.eval_windows(ids, 10)
    assert w.shape == (10, 10)
    assert torch.equal(w.flatten(), torch.arange(100))
    assert data.eval_windows(ids, 10, max_windows=3).shape == (3, 10)
    assert data.eval_windows(ids, 10, max_windows=50).shape == (10, 10)


def test_eval_windows_too_short():
    with pytest.raises(InputError, match="9 tokens, fewer than one window of 10"):
        data.eval_windows(torch.arange(9), 10)


# -- tokenizer --------------------------------------------------------------------------------------
def test_tokenize_long_text_no_warning(tiny_llama_dir, tiny_text, capfd):
    tok = data.load_tokenizer(tiny_llama_dir)
    assert tok.model_max_length < 10_000
    capfd.readouterr()
    ids = data.tokenize(tok, tiny_text)
    err = capfd.readouterr().err
    assert ids.dim() == 1 and ids.dtype == torch.long
    assert ids.numel() > tok.model_max_length
    assert "longer than the specified maximum" not in err
    assert not tok.deprecation_warnings.get("sequence-length-is-longer-than-the-specified-maximum")
    assert tok.decode(ids[:50].tolist()) == tiny_text[: len(tok.decode(ids[:50].tolist()))]


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        data.load_tokenizer(tmp_path / "missing")
    with pytest.raises(InputError, match=r"no tokenizer in .*: it needs tokenizer\.json"):
        data.load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")  # present but unreadable: transformers' first line
    with pytest.raises(InputError, match=r"cannot load a tokenizer from .*\(it needs tokenizer\.json") as e:
        data.load_tokenizer(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "config.json").write_text('{"model_type": "lla')  # a cut config: named, not the tokenizer
    with pytest.raises(InputError, match=r"config\.json is not valid JSON: Unterminated string") as e:
        data.load_tokenizer(tmp_path)
    assert "\n" not in str(e.value)


# -- defaults ---------------------------------------------------------------------------------------
def test_default_paths_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPENSE_DEFAULT_MODEL", str(tmp_path / "m"))
    monkeypatch.setenv("SPENSE_DATA_DIR", str(tmp_path / "d"))
    assert data.default_model() == str(tmp_path / "m")
    assert data.default_data_dir() == tmp_path / "d"
    for fn in (data.default_calib_path, data.default_eval_path):
        with pytest.raises(InputError, match="pass a local path explicitly"):
            fn()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "valid.txt").write_text("v")
    (tmp_path / "d" / "test.txt").write_text("t")
    assert data.default_calib_path() == tmp_path / "d" / "valid.txt"
    assert data.default_eval_path() == tmp_path / "d" / "test.txt"


def test_default_paths_repo_relative(monkeypatch):
    monkeypatch.delenv("SPENSE_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("SPENSE_DATA_DIR", raising=False)
    root = data.REPO_ROOT
    assert (root / "pyproject.toml").is_file()
    assert data.default_model() == "smollm2-135m"
    assert data.default_model_dir() == root / "models" / "default"
    assert data.default_data_dir() == root.parent / "shared" / "data" / "wikitext-2"


def test_windows_with_bos_name_the_asked_length():
    """With a BOS token a window of 64 holds 63 text tokens; the refusal names the 64 that was asked for."""
    ids = torch.arange(40)
    with pytest.raises(InputError, match=r"fewer than one window of 64 tokens \(the BOS token and 63 of text\)"):
        data.eval_windows(ids, 64, bos=1)
    with pytest.raises(InputError, match=r"64 are needed for windows of 64 tokens \(the BOS token and 63"):
        data.calibration_windows(ids, 2, 64, seed=0, bos=1)
    with pytest.raises(InputError, match="no text after the BOS token"):
        data.eval_windows(ids, 1, bos=1)
    w = data.eval_windows(ids, 8, bos=5)
    assert w.shape == (5, 8) and (w[:, 0] == 5).all() and w[1, 1:].tolist() == list(range(7, 14))
    c = data.calibration_windows(ids, 3, 8, seed=0, bos=5)
    assert c.shape == (3, 8) and (c[:, 0] == 5).all()


def test_calibration_windows_bound_and_repeat_warning():
    """A --nsamples past the token bound is one InputError naming it (it was a torch traceback); windows that read
    the text many times over are warned about, the usual slight overlap is not."""
    import warnings

    ids = torch.arange(1000)
    with pytest.raises(InputError, match="pass a smaller --nsamples"):
        data.calibration_windows(ids, 10**20, 16, seed=0)
    with pytest.warns(UserWarning, match=r"read 16x the text's 1000 tokens"):
        data.calibration_windows(ids, 1000, 16, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.calibration_windows(ids, 120, 16, seed=0).shape == (120, 16)


def test_check_token_ids():
    from spense.data import check_token_ids

    check_token_ids(torch.tensor([[0, 7]]), 8)
    check_token_ids([[0, 7], []], 8)
    with pytest.raises(InputError, match=r"gives token id 8, but the model embeds only ids 0\.\.7 "):
        check_token_ids(torch.tensor([[0, 8]]), 8)
    with pytest.raises(InputError, match=r"gives token id -1,"):
        check_token_ids([[3, -1]], 8)
