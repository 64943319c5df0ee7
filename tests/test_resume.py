"""Resume tests: a prune stopped at any stage (a pruned block, the dense-budget allocator's measurement, a swap)
goes on where it stopped and gives an uninterrupted run's checkpoint; the resume state never takes a user's files."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file
from test_pipeline import _cfg, _prune

from spense import io
from spense.errors import CheckpointError, InputError
from spense.resume import CRASH_ENV, SimulatedCrash, partial_dir

def test_resume_after_crash_is_bit_identical(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    cfg = _cfg(strategy="random", axis="rows", dense_ratio=0.25)
    ref = tmp_path / "ref"
    _prune(tiny_llama_dir, ref, tiny_text_file, cfg)

    out = tmp_path / "out"
    monkeypatch.setenv(CRASH_ENV, "0")
    with pytest.raises(SimulatedCrash):
        _prune(tiny_llama_dir, out, tiny_text_file, cfg)
    monkeypatch.delenv(CRASH_ENV)
    part = partial_dir(out)
    assert not out.exists()
    assert (part / "state.json").is_file() and (part / "block_0.safetensors").is_file()
    assert (part / "inps_1.safetensors").is_file()

    done = []
    man = _prune(tiny_llama_dir, out, tiny_text_file, cfg, after_block=done.append)
    assert done == [1]  # block 0 came from the saved state
    assert not part.exists()
    assert len(man["layers"]) == 14
    io.validate_checkpoint(out)
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_inside_the_allocators_measurement(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch, caplog):
    """A run stopped in the dense-budget allocator's measurement resumes it after its last measured block, and
    prunes to the checkpoint of an uninterrupted run."""
    from spense.resume import PassCheckpoint

    kw = {"budget_alloc": "greedy", "axes": "mixed"}
    cfg = _cfg(dense_ratio=0.25)
    ref = tmp_path / "ref"
    _prune(tiny_llama_dir, ref, tiny_text_file, cfg, **kw)

    out, save = tmp_path / "out", PassCheckpoint.save

    def save_then_crash(self, *a, **k):
        save(self, *a, **k)
        raise SimulatedCrash("after the first measured block")

    monkeypatch.setattr(PassCheckpoint, "save", save_then_crash)
    with pytest.raises(SimulatedCrash):
        _prune(tiny_llama_dir, out, tiny_text_file, cfg, **kw)
    monkeypatch.setattr(PassCheckpoint, "save", save)
    sens = partial_dir(out) / "sensitivity"
    assert json.loads((sens / "pass.json").read_text())["next"] == 1
    assert json.loads((partial_dir(out) / "state.json").read_text())["finished"] == []

    caplog.clear()
    told = []
    with caplog.at_level(logging.INFO, logger="spense"):
        man = _prune(tiny_llama_dir, out, tiny_text_file, cfg, **kw, on_resume=lambda kept, root: told.append(kept))
    assert told == ["the dense-budget allocator's measurement of 1 block(s) kept"]  # the CLI says it on resume
    measured = [r.getMessage() for r in caplog.records if ": sensitivity of " in r.getMessage()]
    assert len(measured) == 1 and measured[0].endswith("(block 2/2)")  # block 0 came from the checkpoint
    assert not partial_dir(out).exists()
    assert man["plan"] == json.loads((ref / "spense.json").read_text())["plan"]
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_state_says_what_it_kept(tmp_path):
    """The words `spense prune` prints on resume, for each stage an interrupted run can stop in."""
    from spense.resume import ResumeState

    st = ResumeState(tmp_path / "o.partial", "fp", {})
    assert st.kept() is None
    (st.root / "sensitivity").mkdir()
    (st.root / "sensitivity" / "pass.json").write_text(json.dumps({"next": 2}))
    assert st.kept() == "the dense-budget allocator's measurement of 2 block(s) kept"
    (st.root / "plan.json").write_text("{}")
    assert st.kept() == "the dense-budget allocator's plan kept"
    st.finished = [0]
    assert st.kept() == "1 pruned block(s) kept"


def test_a_users_files_where_the_resume_state_goes_are_never_deleted(tmp_path):
    """OUT.partial holding files of the user's (names a run never writes, even with a run's prefix) or being a plain
    file: refused in one line, nothing removed."""
    from spense.resume import ResumeState

    root = tmp_path / "o.partial"
    root.mkdir()
    (root / "block_0.safetensors").write_text("a run's")  # a run's file without a committed state: it goes
    (root / "passwords.txt").write_text("mine")
    with pytest.raises(InputError, match=r"is not an interrupted spense run's state \(it holds passwords\.txt\)"):
        ResumeState(root, "fp", {})
    assert sorted(p.name for p in root.iterdir()) == ["block_0.safetensors", "passwords.txt"]
    (root / "passwords.txt").unlink()
    ResumeState(root, "fp", {})
    assert sorted(p.name for p in root.iterdir()) == ["state.json"]
    plain = tmp_path / "f.partial"
    plain.write_text("mine")
    with pytest.raises(InputError, match=r"f\.partial exists and is not a folder"):
        ResumeState(plain, "fp", {})
    assert plain.read_text() == "mine"


def test_a_swap_stopped_halfway_is_undone_before_the_output_is_checked(tiny_llama_dir, tiny_text_file, tmp_path):
    """A prune killed between the renames of its swap left OUT missing and `.OUT.old-<pid>` beside it: the rerun
    puts it back first, so it is refused at once as an existing output, not after the whole prune."""
    ref = _prune(tiny_llama_dir, tmp_path / "ref", tiny_text_file)
    shutil.copytree(tmp_path / "ref", tmp_path / ".ck.old-999999999")
    with pytest.raises(CheckpointError, match="already exists"):
        _prune(tiny_llama_dir, tmp_path / "ck", tiny_text_file)
    assert (tmp_path / "ck" / "spense.json").is_file() and not partial_dir(tmp_path / "ck").exists()
    assert ref["layers"]


def test_resume_fingerprint_mismatch_refused(tiny_llama_dir, tiny_text_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv(CRASH_ENV, "0")
    with pytest.raises(SimulatedCrash):
        _prune(tiny_llama_dir, out, tiny_text_file, _cfg(dense_ratio=0.25))
    monkeypatch.delenv(CRASH_ENV)
    with pytest.raises(InputError, match="--restart"):
        _prune(tiny_llama_dir, out, tiny_text_file, _cfg(dense_ratio=0.5))
    assert (partial_dir(out) / "state.json").is_file()
    done = []
    _prune(tiny_llama_dir, out, tiny_text_file, _cfg(dense_ratio=0.5), restart=True, after_block=done.append)
    assert done == [0, 1]
    io.validate_checkpoint(out)
