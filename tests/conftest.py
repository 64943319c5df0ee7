"""Shared test fixtures: a tiny random Llama with a real (tiny) tokenizer, built locally.

Nothing is downloaded.  The tokenizer is a byte-level BPE trained with ``tokenizers`` on the first
~200 KB of WikiText-2 ``valid.txt`` (found through :func:`spense.data.default_data_dir`, i.e.
``$SPENSE_DATA_DIR`` or ``<repo>/../shared/data/wikitext-2``); the model is a randomly initialised
2-layer ``LlamaForCausalLM`` saved with ``save_pretrained``.

Fixtures
--------
``wikitext_dir``    the WikiText-2 directory (``valid.txt`` / ``test.txt``).  Absent: every test that
                    needs it FAILS under ``CI=true`` (a CI run must not pass by skipping), and skips
                    with the path in the message elsewhere.
``tiny_text``       ~20 KB of WikiText-2 ``test.txt`` (str), enough for a few hundred-token windows.
``tiny_text_file``  ``tiny_text`` written to a file (Path).
``tiny_llama_dir``  Path of a local HF model directory (config.json, model.safetensors, tokenizer
                    files).  Session scoped: built once, treat it as READ-ONLY (copy it if a test
                    needs to modify it).  Shapes: hidden 64, intermediate 128, 2 layers, 4 heads,
                    2 KV heads, vocab = tokenizer vocab (512), 256 positions, float32.
``tiny_llama``      ``(model, tokenizer)`` freshly loaded from ``tiny_llama_dir`` (function scoped,
                    so tests may modify the model in place).

Helper: :func:`load_benchmark` imports a script of ``benchmarks/`` (not a package) as a module.

``SPENSE_PASSED_BEFORE=<pytest -v logs, os.pathsep-separated>`` leaves out the tests that PASSED in those
logs, by exact node id (``benchmarks/run_gpu_tests.sh``'s ``RESUME=``: a GPU run cut by its time limit goes
on in the next call).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spense.data import default_data_dir

TOKENIZER_TRAIN_BYTES = 200_000
TINY_VOCAB = 512
TINY_TEXT_BYTES = 20_000


def passed_in(log: Path) -> set[str]:
    """The node ids that a ``pytest -v`` log reports as PASSED (``<id> PASSED [ 38%]``; ids may hold spaces)."""
    done = set()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        head, sep, _ = line.rpartition(" PASSED")
        if sep and "::" in head:
            done.add(head.strip())
    return done


def pytest_collection_modifyitems(config, items):
    logs = os.environ.get("SPENSE_PASSED_BEFORE")
    if not logs:
        return
    done: set[str] = set()
    for f in logs.split(os.pathsep):
        if not Path(f).is_file():
            raise pytest.UsageError(f"SPENSE_PASSED_BEFORE: {f} is not a file")
        done |= passed_in(Path(f))
    drop = [it for it in items if it.nodeid in done]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if it.nodeid not in done]


@contextlib.contextmanager
def lock_held_elsewhere(out: Path):
    """``spense.atomic.out_lock(out)`` held by another process (a second run) until the block ends; yields its pid."""
    code = "import sys; from spense.atomic import out_lock\nwith out_lock(sys.argv[1]):\n print('held', flush=True)\n" \
           " sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout.readline() == "held\n"
        yield proc.pid
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` imported as a module (benchmarks/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def prune_and_pack(model_dir: Path, calib: Path, d: Path, *extra: str) -> tuple[Path, Path]:
    """``(checkpoint, the same packed)`` in ``d``: ``model_dir`` pruned by ``spense prune`` (Spense, 25 % dense,
    blocks of 16, 4 windows of 32 tokens of ``calib``, CPU; ``extra`` flags added) and packed by ``spense pack``."""
    from typer.testing import CliRunner

    from spense.cli import app

    out, packed = d / "pruned", d / "packed"
    r = CliRunner().invoke(app, ["prune", str(model_dir), "--out", str(out), "--calib", str(calib), "--method",
                                 "spense", "--dense-ratio", "0.25", "--block", "16", "--nsamples", "4", "--seqlen",
                                 "32", "--device", "cpu", "--quiet", *extra])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["pack", str(out), "--out", str(packed)])
    assert r.exit_code == 0, r.output
    return out, packed


@pytest.fixture(scope="session")
def wikitext_dir() -> Path:
    d = default_data_dir()
    if not (d / "valid.txt").is_file() or not (d / "test.txt").is_file():
        msg = f"WikiText-2 (valid.txt, test.txt) not found at {d}; set SPENSE_DATA_DIR"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{msg} (CI=true: missing shared data is a failure, not a skip)", pytrace=False)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def tiny_text(wikitext_dir: Path) -> str:
    with open(wikitext_dir / "test.txt", encoding="utf-8") as fh:
        return fh.read(TINY_TEXT_BYTES)


@pytest.fixture(scope="session")
def tiny_text_file(tmp_path_factory, tiny_text: str) -> Path:
    p = tmp_path_factory.mktemp("text") / "tiny.txt"
    p.write_text(tiny_text, encoding="utf-8")
    return p


def build_tiny_tokenizer(train_text: str, vocab_size: int = TINY_VOCAB):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``train_text`` (bos = eos = <|endoftext|>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([train_text], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=256,
    )


def build_tiny_llama(vocab_size: int, seed: int = 0, **overrides):
    """A random 2-layer ``LlamaForCausalLM`` (float32, eval mode); ``overrides`` go to LlamaConfig."""
    from transformers import LlamaConfig, LlamaForCausalLM

    kw = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )
    kw.update(overrides)
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**kw)).eval()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, wikitext_dir: Path) -> Path:
    with open(wikitext_dir / "valid.txt", encoding="utf-8") as fh:
        train = fh.read(TOKENIZER_TRAIN_BYTES)
    tokenizer = build_tiny_tokenizer(train)
    model = build_tiny_llama(len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def tiny_llama(tiny_llama_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir, local_files_only=True)
    return model.eval(), tok
