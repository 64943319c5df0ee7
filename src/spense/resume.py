"""Resume state of an interrupted ``spense prune``: ``OUT.partial/``.

``state.json`` (run fingerprint, finished blocks, their layer records), ``block_{i}.safetensors``
(pruned weights of finished block ``i``) and ``inps_{i}.safetensors`` (float32 hidden states
entering block ``i``, the next one to prune).  Every file goes through :func:`spense.atomic.atomic_write`
(temp + fsync + rename + directory fsync) and ``state.json`` is written last: it is the single
commit point, so a crash at any moment leaves a consistent state.  The fingerprint is the SHA-256 of
the run settings (:func:`fingerprint`); a different one is refused.  ``state.json`` is first written as the
state is opened, so that what comes before the first pruned block (``plan.json``, and ``sensitivity/``: the
dense-budget allocator's measurement, a :class:`PassCheckpoint`) is kept for the same settings only.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import torch

from spense.errors import CheckpointError, InputError
from spense.atomic import atomic_save_tensors, atomic_write_bytes

#: environment variable for tests: simulate a crash right after block ``k`` was saved.
CRASH_ENV = "SPENSE_TEST_CRASH_AFTER_BLOCK"

STATE_VERSION = 1


class SimulatedCrash(RuntimeError):
    """Raised by the crash test hook (``SPENSE_TEST_CRASH_AFTER_BLOCK``)."""


#: the names a run writes in ``OUT.partial/`` (``atomic_write``'s ``.tmp`` files included): anything else is not its own
OWN_FILES = re.compile(r"(state\.json|plan\.json|(block|inps|pass)_\d+\.safetensors|pass\.json|sensitivity)(\.tmp)?")


def fingerprint(info: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of the run settings ``info``."""
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


def file_stamps(path: str | Path) -> list[tuple[str, int, int]]:
    """``(name, size, mtime_ns)`` of every file of the folder ``path`` (or of the file ``path``): a change to a model's
    weights, config or tokenizer changes its run's :func:`fingerprint` without reading the data."""
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    return [(f.name, st.st_size, st.st_mtime_ns) for f in files for st in (f.stat(),)]


def partial_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    return out.with_name(out.name + ".partial")


class ResumeState:
    """``OUT.partial/``: ``state.json`` (fingerprint, finished blocks, layer records),
    ``block_{i}.safetensors`` (pruned weights of finished block ``i``) and ``inps_{i}.safetensors``
    (float32 hidden states entering block ``i``, the next one to prune).

    Each file is written via temp + rename and ``state.json`` is written last, so it is the commit
    point: a crash at any moment leaves a consistent state.
    """

    def __init__(self, root: Path, fingerprint: str, info: dict, restart: bool = False):
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.info = info
        self.finished: list[int] = []
        self.records: dict[str, dict] = {}
        self.seconds = 0.0
        self.inps_file: str | None = None
        state_path = self.root / "state.json"
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root} exists and is not a folder (a run keeps its resume state there): remove "
                             "it, or choose another output")
        if self.root.is_dir() and not state_path.exists():  # files but no committed state: a run's, or the user's
            foreign = sorted(f.name for f in self.root.iterdir() if not OWN_FILES.fullmatch(f.name))
            if foreign:
                raise InputError(f"{self.root} exists and is not an interrupted spense run's state (it holds "
                                 f"{foreign[0]}): remove it, or choose another output")
        if restart and self.root.exists():
            shutil.rmtree(self.root)
        if state_path.exists():
            try:
                st = json.loads(state_path.read_text())
            except (OSError, ValueError) as e:
                raise CheckpointError(
                    f"unreadable resume state {state_path}: {e}; delete {self.root} or pass --restart"
                ) from e
            if st.get("fingerprint") != fingerprint or st.get("state_version") != STATE_VERSION:
                raise InputError(
                    f"{self.root} holds an interrupted run with different settings (model or its files, method, "
                    f"calibration data or version); pass --restart or delete {self.root}"
                )
            self.finished = [int(i) for i in st.get("finished", [])]
            self.records = st.get("records", {})
            self.seconds = float(st.get("seconds", 0.0))
            self.inps_file = st.get("inps")
        else:
            if self.root.exists() and any(self.root.iterdir()):
                # a run's files but no committed state (checked above): nothing finished, start clean
                shutil.rmtree(self.root)
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_state()

    @property
    def next_block(self) -> int:
        return len(self.finished)

    def kept(self) -> str | None:
        """What an interrupted run left that this one goes on from, in words (None when nothing): pruned blocks,
        else the dense-budget allocator's saved plan, else its measurement's last commit."""
        if self.finished:
            return f"{len(self.finished)} pruned block(s) kept"
        if (self.root / "plan.json").is_file():
            return "the dense-budget allocator's plan kept"
        try:
            n = int(json.loads((self.root / "sensitivity" / "pass.json").read_text(encoding="utf-8"))["next"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return f"the dense-budget allocator's measurement of {n} block(s) kept"

    def load_block(self, i: int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        try:
            return load_file(str(self.root / f"block_{i}.safetensors"))
        except Exception as e:
            raise CheckpointError(
                f"resume state {self.root} is damaged ({e}); pass --restart or delete the folder"
            ) from e

    def load_inputs(self) -> torch.Tensor | None:
        if self.inps_file is None:
            return None
        from safetensors.torch import load_file

        try:
            return load_file(str(self.root / self.inps_file))["hidden"]
        except Exception as e:
            raise CheckpointError(
                f"resume state {self.root} is damaged ({e}); pass --restart or delete the folder"
            ) from e

    def commit_block(
        self, i: int, weights: dict[str, torch.Tensor], records: dict[str, dict],
        next_inputs: torch.Tensor | None, seconds: float,
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_save_tensors(self.root / f"block_{i}.safetensors", weights)
        old = self.inps_file
        if next_inputs is not None:
            self.inps_file = f"inps_{i + 1}.safetensors"
            atomic_save_tensors(self.root / self.inps_file, {"hidden": next_inputs.cpu()})
        else:
            self.inps_file = None
        self.finished.append(i)
        self.records.update(records)
        self.seconds += seconds
        self._write_state()
        if old and old != self.inps_file:
            (self.root / old).unlink(missing_ok=True)

    def drop_if_empty(self) -> None:
        """Remove the folder when it holds nothing but the opening ``state.json``."""
        if not self.finished and self.root.is_dir() and {q.name for q in self.root.iterdir()} <= {"state.json"}:
            shutil.rmtree(self.root, ignore_errors=True)

    def _write_state(self) -> None:
        st = {
            "state_version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "info": self.info,
            "finished": self.finished,
            "records": self.records,
            "seconds": self.seconds,
            "inps": self.inps_file,
        }
        atomic_write_bytes(self.root / "state.json", json.dumps(st, indent=1).encode())


class PassCheckpoint:
    """The state of a block-by-block pass after its last finished block, in ``root/``: ``pass.json`` (``key``,
    the next block, a JSON ``meta``) and ``pass_{i}.safetensors`` (its tensors).  The tensors are written
    first and ``pass.json`` last (its commit point), each atomically; a saved ``key`` other than the caller's
    is refused.  :mod:`spense.sensitivity` keeps the allocator's measurement here, so that an interrupted
    ``spense prune`` resumes it after the last measured block."""

    def __init__(self, root: str | Path, key: str) -> None:
        self.root, self.key = Path(root), key

    def load(self) -> tuple[int, dict, dict[str, torch.Tensor]] | None:
        """``(next block, meta, tensors)`` of the last commit, or ``None`` when nothing was committed."""
        path = self.root / "pass.json"
        if not path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            st = json.loads(path.read_text(encoding="utf-8"))
            if st["key"] != self.key:
                raise ValueError(f"it was saved for another pass ({st['key']!r})")
            return int(st["next"]), st["meta"], load_file(str(self.root / st["tensors"]))
        except Exception as e:
            raise CheckpointError(f"resume state {self.root} is damaged ({e}); pass --restart or delete it") from e

    def save(self, next_block: int, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Commit the state before block ``next_block``; the previous commit's tensors are removed after."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"pass_{next_block}.safetensors"
        atomic_save_tensors(self.root / name, tensors)
        atomic_write_bytes(self.root / "pass.json", json.dumps({"key": self.key, "next": next_block, "tensors": name,
                                                                "meta": meta}).encode())
        (self.root / f"pass_{next_block - 1}.safetensors").unlink(missing_ok=True)  # the commit before


class RowCache:
    """The finished parts of a run made of independent parts (``spense demo``'s methods) in one JSON file: the
    run's fingerprint and one row per finished part, rewritten atomically after each.  A file of another
    fingerprint, or one that does not read, counts as empty (and is replaced by the next :meth:`put`);
    :meth:`done` removes the file once the run has ended."""

    def __init__(self, path: str | Path, fingerprint: str) -> None:
        self.path, self.fingerprint = Path(path), fingerprint
        self.rows: dict[str, dict] = {}
        try:
            st = json.loads(self.path.read_text(encoding="utf-8"))
            if st.get("fingerprint") == fingerprint and isinstance(st.get("rows"), dict):
                self.rows = st["rows"]
        except (OSError, ValueError, AttributeError):
            pass

    def put(self, key: str, row: dict) -> None:
        """Keep ``row``; where the file cannot be written, say so once and go on without it (the run itself is
        not stopped by its cache)."""
        self.rows[key] = row
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps({"fingerprint": self.fingerprint, "rows": self.rows}).encode())
        except OSError as e:
            from spense.log import logger

            logger.warning("cannot keep finished parts in %s (%s): an interruption will start over", self.path, e)
            self.path = None

    def done(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
