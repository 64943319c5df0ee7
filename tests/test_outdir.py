"""spense.outdir: which output folders a run may write, and what ``--overwrite`` may replace (paths only; the
checkpoint writes themselves: tests/test_io.py)."""

from __future__ import annotations

import pytest

from spense.errors import CheckpointError
from spense.outdir import MANIFEST, check_out_dir, foreign_files


def _checkpoint(folder, *extra):
    folder.mkdir()
    for name in (MANIFEST, "config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                 "tokenizer.json", "chat_template.jinja", "spense_packed.safetensors", *extra):
        (folder / name).write_text("x")
    return folder


def test_foreign_files_are_what_no_checkpoint_writes(tmp_path):
    ck = _checkpoint(tmp_path / "ck")
    assert foreign_files(ck) == []
    (ck / "notes.txt").write_text("mine")
    (ck / "sub").mkdir()
    assert foreign_files(ck) == ["notes.txt", "sub"]


def test_overwrite_replaces_only_a_checkpoint_of_its_own_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ck = _checkpoint(tmp_path / "ck")
    check_out_dir(src, ck, True)
    with pytest.raises(CheckpointError, match="already exists; pass --overwrite"):
        check_out_dir(src, ck, False)
    for i in range(7):
        (ck / f"f{i}.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"holds files a Spense checkpoint does not \(f0.txt, f1.txt, f2.txt, "
                                              r"f3.txt, f4.txt, \.\.\.\); refusing to replace it"):
        check_out_dir(src, ck, True)
    assert sorted(p.name for p in ck.iterdir() if p.suffix == ".txt") == [f"f{i}.txt" for i in range(7)]


def test_an_input_of_the_run_inside_the_output_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "out"
    with pytest.raises(CheckpointError, match=r"^--eval .*out/t.txt is inside the output .*out, which the run "
                                              r"writes; move it or choose another --out-dir$"):
        check_out_dir(src, out, True, flag="--out-dir", inputs={"--calib": None, "--eval": out / "t.txt"})
    with pytest.raises(CheckpointError, match="--calib .* is inside the output"):
        check_out_dir(src, out, True, inputs={"--calib": out})  # the output itself
    check_out_dir(src, out, True, inputs={"--calib": tmp_path / "outside.txt", "--eval": tmp_path / "out2" / "t"})
