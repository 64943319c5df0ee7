"""The source digest (``spense.provenance``): stable, sensitive to content and paths, blind to caches,
and the same whether read from the files or from a git commit, so that ``commits_with`` finds the
commit a result row's ``src_digest`` came from."""

import os
import shutil
import subprocess
import sys

import pytest

from spense.provenance import SRC, commit_digest, commits_with, main, source_digest, tree_digest


def test_tree_digest_order_content_and_suffixes():
    a = [("x.py", b"1"), ("k/y.cu", b"2")]
    assert tree_digest(a) == tree_digest(list(reversed(a)))
    assert tree_digest(a) != tree_digest([("x.py", b"1"), ("k/y.cu", b"3")])
    assert tree_digest(a) != tree_digest([("z.py", b"1"), ("k/y.cu", b"2")])  # a rename shows
    assert tree_digest(a) == tree_digest(a + [("notes.txt", b"ignored"), ("lib.so", b"\0")])
    assert len(tree_digest(a)) == 12


def test_source_digest_ignores_caches(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.py").write_text("x = 1\n")
    d = source_digest(tmp_path)
    for cache in ("__pycache__", ".ruff_cache"):
        (tmp_path / "m" / cache).mkdir()
        (tmp_path / "m" / cache / "a.py").write_text("stale\n")
    assert source_digest(tmp_path) == d
    (tmp_path / "m" / "a.py").write_text("x = 2\n")
    assert source_digest(tmp_path) != d


def _git_tree_is_clean() -> bool:
    if shutil.which("git") is None:
        return False
    repo = SRC.parent.parent
    r = subprocess.run(["git", "status", "--porcelain", "--", "src/spense"], cwd=repo, capture_output=True, text=True)
    return r.returncode == 0 and not [ln for ln in r.stdout.splitlines() if "__pycache__" not in ln]


@pytest.mark.skipif(not _git_tree_is_clean(), reason="needs git and src/spense as committed (CI's fresh clone)")
def test_commit_digest_matches_the_files_and_is_found(capsys):
    repo = SRC.parent.parent
    d = source_digest()
    assert commit_digest(repo, "HEAD") == d
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout[:7]
    assert commits_with(d, limit=3)[0] == head
    assert main([d]) == 0 and head in capsys.readouterr().out
    assert main(["000000000000"]) == 1


def test_current_commit_prefers_the_variable(monkeypatch):
    """``SPENSE_COMMIT`` names the commit when set (a device's git metadata may be stale); else git's HEAD,
    short or whole, or ``"unknown"`` without git."""
    from spense.provenance import current_commit

    monkeypatch.setenv("SPENSE_COMMIT", "abc1234")
    assert current_commit() == current_commit(short=False) == "abc1234"
    monkeypatch.delenv("SPENSE_COMMIT")
    short, full = current_commit(), current_commit(short=False)
    if shutil.which("git") is None or short == "unknown":
        assert short == full == "unknown"
    else:
        assert len(short) >= 7 and full.startswith(short) and len(full) == 40


def test_numerics_digest_repeats_and_tells_kernels_that_add_in_another_order_apart():
    """The digest is the same on a second call, and another vector width of torch's CPU kernels (which sums in
    another order) gives another one."""
    import torch

    from spense.provenance import numerics_digest

    d = numerics_digest()
    assert len(d) == 12 and d == numerics_digest()
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU has no vector width beyond torch's default kernels")
    code = "from spense.provenance import numerics_digest; print(numerics_digest())"
    got = {}
    for cap in ("default", torch.backends.cpu.get_cpu_capability().lower()):
        env = {**os.environ, "ATEN_CPU_CAPABILITY": cap, "OMP_NUM_THREADS": str(torch.get_num_threads()),
               "PYTHONPATH": str(SRC.parent)}
        got[cap] = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True).stdout.strip()
    assert got["default"] != got[torch.backends.cpu.get_cpu_capability().lower()]
