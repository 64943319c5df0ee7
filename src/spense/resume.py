"""Resume state of an interrupted ``spense prune``: ``OUT.partial/``.

``state.json`` (run fingerprint, finished blocks, their layer records), ``block_{i}.safetensors``
(pruned weights of finished block ``i``) and ``inps_{i}.safetensors`` (float32 hidden states
entering block ``i``, the next one to prune).  Every file goes through :func:`spense.atomic.atomic_write`
(temp + fsync + rename + directory fsync) and ``state.json`` is written last: it is the single
commit point, so a crash at any moment leaves a consistent state.  The fingerprint is the SHA-256 of
the run settings (:func:`fingerprint`); a different one is refused.
"""

from __future__ import annotations

import hashlib
import json
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


def fingerprint(info: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of the run settings ``info``."""
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


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
                    f"{self.root} holds an interrupted run with different settings (model, method, "
                    f"calibration data or version); pass --restart or delete {self.root}"
                )
            self.finished = [int(i) for i in st.get("finished", [])]
            self.records = st.get("records", {})
            self.seconds = float(st.get("seconds", 0.0))
            self.inps_file = st.get("inps")
        elif self.root.exists() and any(self.root.iterdir()):
            # files but no committed state: nothing finished, start clean
            shutil.rmtree(self.root)

    @property
    def next_block(self) -> int:
        return len(self.finished)

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
        if old and old != self.inps_file:
            (self.root / old).unlink(missing_ok=True)
