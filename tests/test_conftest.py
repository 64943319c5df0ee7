"""The suite's own plugin: SPENSE_PASSED_BEFORE leaves out, by exact node id, what a pytest -v log says PASSED
(benchmarks/run_gpu_tests.sh's RESUME=)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import passed_in

ROOT = Path(__file__).resolve().parents[1]


def test_passed_in_reads_ids_with_spaces_and_brackets(tmp_path):
    log = tmp_path / "tests_kernels.txt"
    log.write_text("tests/a.py::t[x-<2, false>|y] PASSED [ 38%]\n"
                   "tests/a.py::u FAILED [ 40%]\n"
                   "tests/a.py::v PASSED\n"
                   "=== 2 passed, 1 failed ===\n", encoding="utf-8")
    assert passed_in(log) == {"tests/a.py::t[x-<2, false>|y]", "tests/a.py::v"}


def _collect(env_log: str | None) -> str:
    env = dict(os.environ)
    env.pop("SPENSE_PASSED_BEFORE", None)
    if env_log is not None:
        env["SPENSE_PASSED_BEFORE"] = env_log
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                        "tests/test_conftest.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return r.stdout + r.stderr


def test_passed_tests_are_deselected_by_exact_id(tmp_path):
    log = tmp_path / "log.txt"
    # a prefix of another test's id: only the exact id goes
    log.write_text("tests/test_conftest.py::test_passed_in_reads_ids_with_spaces_and_brackets PASSED [ 50%]\n"
                   "tests/test_conftest.py::test_passed PASSED [ 60%]\n", encoding="utf-8")
    out = _collect(str(log))
    assert "1/2 tests collected (1 deselected)" in out, out
    assert "\n2 tests collected" in _collect(None)
    assert "is not a file" in _collect(str(tmp_path / "missing.txt"))
