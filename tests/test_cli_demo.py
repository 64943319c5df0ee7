"""CLI tests of `spense demo` (typer CliRunner) on the tiny Llama from conftest, and the published demo numbers on the
real default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from test_cli import _run

from spense import data
from spense.cli import demo_methods
from spense.cli.commands import QUICK_METHODS


def test_demo_quick_runs_its_subset(tiny_llama_dir, tiny_text_file, tmp_path):
    js = tmp_path / "demo.json"
    res = _run("demo", "--quick", "--model", tiny_llama_dir, "--calib", tiny_text_file, "--text", tiny_text_file,
               "--device", "cpu", "--block", "16", "--json", js)
    assert res.exit_code == 0, res.output
    got = [r["method"] for r in json.loads(js.read_text())["results"]]
    assert got == [label for label, _ in demo_methods(quick=True)] == list(QUICK_METHODS)


def test_demo_windows_open_with_bos_where_the_tokenizer_adds_one(tiny_llama_dir, tiny_text_file, monkeypatch):
    """Gemma was trained with <bos> opening every sequence: the demo's calibration and evaluation windows start with
    it, as prune's and eval's do (without it Gemma-3-270M's demo perplexity came out about 6x too high)."""
    from spense import data

    seen = {}
    calib = data.calibration_windows

    def calib_spy(*a, **k):
        seen["calib"] = k.get("bos")
        return calib(*a, **k)

    def eval_spy(*a, **k):
        seen["eval"] = k.get("bos")
        raise KeyboardInterrupt  # the windows are what this test is about

    monkeypatch.setattr(data, "bos_id", lambda tok: 7)
    monkeypatch.setattr(data, "calibration_windows", calib_spy)
    monkeypatch.setattr(data, "eval_windows", eval_spy)
    res = _run("demo", "--quick", "--model", tiny_llama_dir, "--calib", tiny_text_file, "--text", tiny_text_file,
               "--device", "cpu", "--block", "16")
    assert res.exit_code == 130 and seen == {"calib": 7, "eval": 7}, (res.output, seen)


def test_demo_resumes_after_an_interruption(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    """An interrupted demo keeps its finished methods ($SPENSE_CACHE/demo/); the rerun measures only the others,
    gives the same table as an uninterrupted run, and removes what it kept."""
    import spense.evaluate

    monkeypatch.setenv("SPENSE_CACHE", str(tmp_path / "cache"))
    args = ("demo", "--quick", "--model", tiny_llama_dir, "--calib", tiny_text_file, "--text", tiny_text_file,
            "--device", "cpu", "--block", "16", "-q")
    ref = _run(*args, "--json", tmp_path / "ref.json")
    assert ref.exit_code == 0, ref.output
    assert not list((tmp_path / "cache").rglob("*.json"))  # a finished demo keeps nothing

    perplexity, calls = spense.evaluate.perplexity, []

    def second_fails(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return perplexity(*a, **k)

    monkeypatch.setattr(spense.evaluate, "perplexity", second_fails)
    assert _run(*args).exit_code != 0
    kept = list((tmp_path / "cache" / "demo").glob("*.json"))
    assert len(kept) == 1 and list(json.loads(kept[0].read_text())["rows"]) == ["dense"]
    calls.clear()
    monkeypatch.setattr(spense.evaluate, "perplexity", lambda *a, **k: calls.append(1) or perplexity(*a, **k))
    res = _run(*args, "--json", tmp_path / "out.json")
    assert res.exit_code == 0, res.output
    assert "resuming: 1 of 3 methods" in res.stdout and len(calls) == 2  # dense came from the cache
    got, want = (json.loads((tmp_path / f).read_text())["results"] for f in ("out.json", "ref.json"))
    assert [(r["method"], r["perplexity"], r["layer_loss"]) for r in got] == \
        [(r["method"], r["perplexity"], r["layer_loss"]) for r in want]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["resumed"] == ["dense"] and out["resumed_seconds"] == got[0]["wall_s"] > 0
    assert out["seconds"] > out["resumed_seconds"] and "of it in the interrupted run" in res.stdout
    assert ref.stdout.count("interrupted run") == 0
    assert not kept[0].exists()
    res = _run(*args, "--nsamples", "3")  # other settings: nothing reused
    assert res.exit_code == 0 and "resuming" not in res.stdout
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("SPENSE_CACHE", str(tmp_path / "file"))  # a cache that cannot be written: the demo goes on
    res = _run(*args, "--json", tmp_path / "nocache.json")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "nocache.json").read_text())["results"][2]["perplexity"] == want[2]["perplexity"]


def test_demo_runs_all_methods(tiny_llama_dir, tiny_text_file, tmp_path):
    js = tmp_path / "demo.json"
    # --block 16: the tiny model's 64-wide layers get a 16-wide dense region at 25 %
    res = _run("demo", "--model", tiny_llama_dir, "--calib", tiny_text_file, "--text", tiny_text_file,
               "--nsamples", "8", "--seqlen", "128", "--max-eval-windows", "16",
               "--device", "cpu", "--block", "16", "--json", js)
    assert res.exit_code == 0, res.output
    labels = [label for label, _ in demo_methods()]
    assert len(labels) == 10
    for label in labels:
        assert label in res.stdout, label
    payload = json.loads(js.read_text())
    assert [r["method"] for r in payload["results"]] == labels
    dens = {r["method"]: r["density"] for r in payload["results"]}
    assert dens["dense"] == 1.0
    assert abs(dens["sparsegpt 2:4"] - 0.5) < 0.01
    assert abs(dens["unstructured 62.5%"] - 0.625) < 0.02
    assert all(torch.isfinite(torch.tensor(r["perplexity"])) for r in payload["results"])
    res24 = {r["method"]: r for r in payload["results"]}
    assert res24["dense"]["layer_loss"] is None and res24["sparsegpt 2:4"]["loss_vs_24"] == 1.0
    # OBS updates beat no updates; a dense region beats none (layer loss summed over layers)
    assert res24["magnitude 2:4"]["loss_vs_24"] > 1.0
    assert all(res24[k]["loss_vs_24"] < 1.0 for k in res24 if k.startswith("spense"))
    # loss-guided rows keep the rows a trial 2:4 pass reconstructs worst: below random rows
    assert res24["spense loss-rows"]["loss_vs_24"] < res24["spense random rows"]["loss_vs_24"]


# -- the published demo numbers ------------------------------------------------------------------------
PUBLISHED_DEMO = "docs/results/demo_quick.json"
#: the demo is deterministic (seeded windows, no global RNG, float32 on CPU): a rerun on the same
#: torch build, solver and CPU kernels reproduces the published numbers bit for bit, and 1e-3 relative
#: catches any change.  It is a pin, not a tolerance for "equivalent" code: with 4 x 128 calibration
#: tokens the Hessians are rank-deficient and many 2:4 choices are near-ties, so even a reordering of
#: the OBS sweep's float sums (2026-11-30: per-window updates, mathematically the same) flips masks in
#: later layers and moved the SparseGPT perplexity by 4 % (112.6 -> 107.8).  Regenerate after such a
#: change.  The CPU kernels are torch's for the vector width the file names (``cpu_capability``):
#: the test reruns the demo under ``ATEN_CPU_CAPABILITY`` set to it, since AVX-512's kernels sum in
#: another order (2026-12-02, the same commit: SparseGPT 2:4 116.0 and Spense 74.8 against AVX2's
#: 107.8 and 80.1, dense 37.08 under both).  So does another BLAS code path at the same width (2026-12-07, an
#: AMX machine: 102.8 / 78.2): the file records :func:`spense.provenance.numerics_digest`, and on a machine of
#: another digest the test checks what does not hang on near-ties (:func:`_check_demo_on_other_numerics`).
DEMO_RTOL = 1e-3


#: how far a pruned row's perplexity may move on a CPU whose kernels add in another order (results on four MKL code
#: paths and two vector widths, 2026-12-07: SparseGPT 2:4 101.4-116.0, Spense salience-cols 74.8-80.2)
OTHER_NUMERICS_RTOL = 0.15


def _check_demo_on_other_numerics(got: list[dict], pub: list[dict]) -> None:
    """The demo on a machine of another :func:`spense.provenance.numerics_digest`: dense (no 2:4 choice) to
    ``DEMO_RTOL``, each pruned row's perplexity to ``OTHER_NUMERICS_RTOL`` and its density to 1e-3, and the order
    dense < Spense salience-cols < SparseGPT 2:4."""
    ppl = {g["method"]: g["perplexity"] for g in got}
    for g, p in zip(got, pub):
        rtol = DEMO_RTOL if g["method"] == "dense" else OTHER_NUMERICS_RTOL
        assert g["perplexity"] == pytest.approx(p["perplexity"], rel=rtol), (g["method"], g["perplexity"])
        assert g["density"] == pytest.approx(p["density"], rel=1e-3), g["method"]
    assert ppl["dense"] < ppl["spense salience-cols"] < ppl["sparsegpt 2:4"], ppl


@pytest.mark.slow
def test_demo_quick_matches_published_numbers(tmp_path, wikitext_dir):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pub = json.loads((root / PUBLISHED_DEMO).read_text())
    model = data.default_model()
    regen = f"regenerate it with: spense demo --quick --device cpu --json {PUBLISHED_DEMO}"
    assert pub["model"] == model, f"{PUBLISHED_DEMO} is for {pub['model']}, not {model}; {regen}"
    js = tmp_path / "demo.json"
    cap = pub.get("cpu_capability", "AVX2")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": cap.lower(), "SPENSE_DATA_DIR": str(wikitext_dir)}
    res = subprocess.run([sys.executable, "-c", "from spense.cli import main; main()", "demo", "--quick", "--device",
                          "cpu", "--quiet", "--json", str(js)], cwd=root, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    got = json.loads(js.read_text())
    if got["cpu_capability"] != cap:  # this CPU lacks the published kernels' width: torch took another
        pytest.skip(f"{PUBLISHED_DEMO} holds torch's {cap} CPU kernels' numbers; this CPU ran {got['cpu_capability']}")
    assert [r["method"] for r in got["results"]] == [r["method"] for r in pub["results"]], regen
    if got["numerics"] != pub.get("numerics"):  # kernels that add in another order: near-tie 2:4 choices flip
        _check_demo_on_other_numerics(got["results"], pub["results"])
        return
    for g, p in zip(got["results"], pub["results"]):
        for key in ("perplexity", "density", "layer_loss", "loss_vs_24"):
            if p[key] is None:
                assert g[key] is None, (p["method"], key)
            else:
                assert g[key] == pytest.approx(p[key], rel=DEMO_RTOL), (p["method"], key, regen)
