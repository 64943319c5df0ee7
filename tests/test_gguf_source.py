"""A .gguf read and dequantized (spense.gguf_source): its header, transformers' bar kept off, and what is refused
before any dequantization (a wrong tokenizer, weights that cannot fit in the host's memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spense import gguf_source
from spense.errors import InputError

pytest.importorskip("gguf")
from test_models import write_tiny_gguf  # noqa: E402  (after the skip: it imports gguf)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    p = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    return p, write_tiny_gguf(p)


def test_header_names_the_architecture_and_counts_the_weights(tiny_gguf):
    arch, numel = gguf_source.gguf_header(tiny_gguf[0])
    assert (arch, numel) == ("llama", sum(a.size for a in tiny_gguf[1].values()))


def test_gguf_conversion_draws_no_bar_off_a_terminal(tiny_gguf, tmp_path, capfd):
    """transformers' GGUF reader draws a tqdm bar of its own; off a terminal (and under -q / --json) it is off, as
    spense's bars are, and the reader's tqdm is given back afterwards."""
    import transformers.modeling_gguf_pytorch_utils as reader

    bar = reader.tqdm
    gguf_source.convert_gguf(tiny_gguf[0], tmp_path / "out")
    assert "GGUF tensors" not in capfd.readouterr().err and reader.tqdm is bar
    assert (tmp_path / "out" / "config.json").is_file()


def test_gemma_gguf_refused_with_a_transformers_that_builds_its_tokenizer_wrong(tmp_path, monkeypatch):
    """transformers 5.17 builds a wrong Gemma tokenizer from GGUF (measured: docs/results.md §0).  The conversion
    reads the architecture itself, so a built-in model's GGUF (assembled from chunks, no name given) is checked
    too."""
    with pytest.raises(InputError, match=r"transformers 5\.17\.0 builds a wrong tokenizer.*>=5\.24"):
        gguf_source.check_gguf_tokenizer_support("gemma3", "5.17.0")
    gguf_source.check_gguf_tokenizer_support("gemma3", "5.24.0")
    gguf_source.check_gguf_tokenizer_support("llama", "5.17.0")  # SmolLM2's llama tokenizer converts right there
    import transformers

    write_tiny_gguf(tmp_path / "g.gguf", arch="gemma3")
    monkeypatch.setattr(transformers, "__version__", "5.17.0")
    with pytest.raises(InputError, match=r"builds a wrong tokenizer from a gemma3 GGUF"):
        gguf_source.convert_gguf(tmp_path / "g.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_gguf_that_cannot_fit_is_refused_before_it_is_dequantized(tiny_gguf, tmp_path, monkeypatch):
    from spense import hostmem

    numel = sum(a.size for a in tiny_gguf[1].values())
    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: 4 * numel - 1)
    with pytest.raises(InputError, match=rf"dequantizing .*tiny-llama\.gguf \(0\.00 B weights\) in float32 needs "
                                         r"0\.0 GB of host memory.*Use a machine with more memory"):
        gguf_source.convert_gguf(tiny_gguf[0], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: 4 * numel)
    gguf_source.convert_gguf(tiny_gguf[0], tmp_path / "out2")
