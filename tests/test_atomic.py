"""spense.atomic: a file is written in full or left as it was; a directory swapped into place replaces the old one."""

import os
import stat

import pytest
import torch

from spense.atomic import atomic_save_tensors, atomic_write, atomic_write_bytes, plain_mode, swap_in


def test_atomic_write_bytes_replaces_the_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "state.json"
    p.write_bytes(b"old")
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "state.json"
    p.write_bytes(b"old")

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt  # a Ctrl-C mid-write: BaseException, not only Exception

    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, half_then_fail)
    assert p.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.json"]


def test_atomic_save_tensors_round_trip(tmp_path):
    from safetensors.torch import load_file

    t = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(), "b": torch.ones(4, dtype=torch.bfloat16)}
    atomic_save_tensors(tmp_path / "w.safetensors", t, metadata={"k": "v"})
    back = load_file(str(tmp_path / "w.safetensors"))
    assert torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"])
    # safetensors writes 0600; the written file gets the mode of any new file here (umask 022: 0644)
    old = os.umask(0o022)
    try:
        atomic_save_tensors(tmp_path / "m.safetensors", t)
        assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
        (tmp_path / "private").write_bytes(b"x")
        os.chmod(tmp_path / "private", 0o600)
        plain_mode(tmp_path)  # a finished checkpoint directory (io.publish)
        assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_swap_in_replaces_an_existing_directory_and_removes_the_old_one(tmp_path):
    out, tmp = tmp_path / "ckpt", tmp_path / ".ckpt.tmp"
    out.mkdir()
    (out / "old.txt").write_text("old")
    tmp.mkdir()
    (tmp / "new.txt").write_text("new")
    swap_in(tmp, out)
    assert sorted(x.name for x in out.iterdir()) == ["new.txt"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ckpt"]
    tmp.mkdir()
    (tmp / "first.txt").write_text("first")
    swap_in(tmp, tmp_path / "fresh")  # no existing output: a plain rename
    assert (tmp_path / "fresh" / "first.txt").read_text() == "first"


def test_recover_stale_after_a_kill(tmp_path):
    """A dead run's temp folder goes; a swap it stopped between its renames is undone (the old checkpoint back as
    OUT), or its old copy removed where OUT is there; a live process's folders stay."""
    import subprocess
    import sys

    from spense.atomic import recover_stale

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has exited
    out = tmp_path / "ck"
    (tmp_path / f".ck.tmp-{dead}").mkdir()
    old = tmp_path / f".ck.old-{dead}"
    old.mkdir()
    (old / "spense.json").write_text("old")
    live = tmp_path / f".ck.tmp-{os.getppid()}"  # another live process (this one's pid counts as an earlier run's)
    live.mkdir()
    recover_stale(out)
    assert (out / "spense.json").read_text() == "old" and not old.exists()
    assert not (tmp_path / f".ck.tmp-{dead}").exists() and live.exists()
    old.mkdir()
    recover_stale(out)  # OUT is there: the leftover old copy goes
    assert not old.exists() and (out / "spense.json").read_text() == "old"


def test_out_lock_refuses_a_second_writer_and_is_released(tmp_path):
    """One writer per output: a second run locking the same ``out`` is refused naming the holder's pid, while another
    output is free; on release the lock file and the folders made for it are gone, and the output locks again."""
    from conftest import lock_held_elsewhere
    from spense.atomic import out_lock
    from spense.errors import InputError

    out = tmp_path / "a" / "b" / "ckpt"
    with lock_held_elsewhere(out) as pid:
        assert (out.parent / ".ckpt.lock").read_text() == str(pid)
        with pytest.raises(InputError, match=rf"another spense run \(pid {pid}\) is writing .*ckpt: wait"):
            with out_lock(out):
                pass
        with out_lock(out.with_name("other")):
            pass
    assert not (tmp_path / "a").exists()  # made for the lock alone, and left empty
    out.parent.mkdir(parents=True)
    (out.parent / ".ckpt.lock").write_text("999999999")  # a killed run's file: no process holds its lock
    with out_lock(out):
        assert (out.parent / ".ckpt.lock").read_text() == str(os.getpid())
        with out_lock(out):  # this process holds it: a nested use (prune --packed's pack) passes
            (out.parent / "kept.txt").write_text("x")
    assert sorted(p.name for p in out.parent.iterdir()) == ["kept.txt"]


def test_a_swap_left_by_an_earlier_run_of_this_pid_is_undone(tmp_path):
    """In a container every run may be pid 1: a `.OUT.old-<this pid>` is an earlier run's, never this one's."""
    from spense.atomic import recover_stale

    old = tmp_path / f".ckpt.old-{os.getpid()}"
    old.mkdir()
    (old / "spense.json").write_text("{}")
    recover_stale(tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_lock_file_that_cannot_be_written_still_locks(tmp_path, monkeypatch):
    """A killed run of another user left its lock file (0644): flock needs no write access, so it is opened
    read-only; a file that cannot be opened at all is one line."""
    from spense.atomic import out_lock
    from spense.errors import InputError

    real = os.open

    def no_write(path, flags, *a):
        if str(path).endswith(".lock") and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *a)

    (tmp_path / ".o.lock").write_text("123")
    monkeypatch.setattr(os, "open", no_write)
    with out_lock(tmp_path / "o"):
        assert (tmp_path / ".o.lock").read_text() == "123"

    def nothing(path, flags, *a):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *a)

    monkeypatch.setattr(os, "open", nothing)
    with pytest.raises(InputError, match=r"cannot open the lock file .*\.o\.lock \(Permission denied\): remove it"):
        with out_lock(tmp_path / "o"):
            pass


def test_pack_leaves_a_live_writers_temp_folder_alone(tmp_path):
    """The leftovers beside OUT are tidied only under OUT's lock: a run on another host (its pid unknown here) that
    holds it keeps its temp folder."""
    from conftest import lock_held_elsewhere
    from spense.errors import InputError
    from spense.runtime.checkpoint import pack_checkpoint

    out = tmp_path / "pk"
    tmp = tmp_path / ".pk.tmp-999999999"
    tmp.mkdir()
    with lock_held_elsewhere(out):
        with pytest.raises(InputError, match="is writing"):
            pack_checkpoint(tmp_path / "src", out)
    assert tmp.is_dir()
