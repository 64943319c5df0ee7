"""Which code produced a measurement: a digest of the source tree, and the commit that has it.

A result row names its commit (``SPENSE_COMMIT`` or ``git rev-parse``), but a copy of the working tree
on another machine may carry stale git metadata, so the row also records the digest of the code that
actually ran:

    digest = sha256 over the files under ``src/spense`` with a suffix in SUFFIXES, in path order,
             of (relative path, NUL, size, NUL, bytes)  ->  the first 12 hex digits

:func:`numerics_digest` tells machines whose CPU kernels add floats in another order apart.

``python -m spense.provenance`` prints the digest of this checkout; ``python -m spense.provenance
DIGEST`` walks the git history (newest first) and prints the commits whose ``src/spense`` has it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable

SUFFIXES = (".py", ".cu", ".cuh", ".json")
SRC = Path(__file__).resolve().parent  # src/spense


def tree_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """The digest of ``(path relative to src/spense, content)`` pairs (any order; other suffixes ignored)."""
    h = hashlib.sha256()
    for rel, data in sorted((r, d) for r, d in files if r.endswith(SUFFIXES)):
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()[:12]


def source_digest(root: Path | None = None) -> str:
    """The digest of the source tree at ``root`` (default: this package's own files)."""
    root = Path(root) if root is not None else SRC
    rels = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return tree_digest((r.as_posix(), (root / r).read_bytes()) for r in rels  # no caches: __pycache__, .ruff_cache
                       if "__pycache__" not in r.parts and not any(x.startswith(".") for x in r.parts))


def current_commit(short: bool = True) -> str:
    """The commit a result names: ``SPENSE_COMMIT`` if set (a device's copy of the tree may carry stale
    git metadata), else this checkout's HEAD (``short``: 7 digits), else ``"unknown"``."""
    if os.environ.get("SPENSE_COMMIT"):
        return os.environ["SPENSE_COMMIT"]
    try:
        args = ["rev-parse", "--short", "HEAD"] if short else ["rev-parse", "HEAD"]
        return _git(SRC.parent.parent, *args).decode().strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True).stdout


def commit_digest(repo: Path, commit: str) -> str:
    """The digest of ``src/spense`` as committed in ``commit`` of the git repository ``repo``."""
    rows = [ln.split("\t", 1) for ln in _git(repo, "ls-tree", "-r", commit, "--", "src/spense").decode().splitlines()]
    blobs = [(meta.split()[2], path[len("src/spense/"):]) for meta, path in rows if path.endswith(SUFFIXES)]
    out = _git(repo, "cat-file", "--batch", data="".join(f"{sha}\n" for sha, _ in blobs).encode())
    files, pos = [], 0
    for _, rel in blobs:  # each answer: "<sha> blob <size>\n<bytes>\n"
        end = out.index(b"\n", pos)
        size = int(out[pos:end].split()[2])
        files.append((rel, out[end + 1:end + 1 + size]))
        pos = end + 2 + size
    return tree_digest(files)


def commits_with(digest: str, repo: Path | None = None, limit: int = 200) -> list[str]:
    """The commits (short hashes, newest first, among the last ``limit`` of HEAD) whose ``src/spense``
    has ``digest``."""
    repo = Path(repo) if repo is not None else SRC.parent.parent
    shas = _git(repo, "rev-list", f"--max-count={limit}", "HEAD").decode().split()
    return [s[:7] for s in shas if commit_digest(repo, s) == digest]


def numerics_digest() -> str:
    """The digest of this machine's float32 CPU arithmetic on the OBS prune's operations, on fixed inputs:
    ``H = X X^T / n``, ``L = chol(H + 0.01 I)``, ``H^-1`` from ``L``, ``L^-1 W^T``, ``Y = W H^-1``, a long sum, and
    the forward's softmax, SiLU and RMS norm of ``Y``.

    The kernels torch and its BLAS pick for the CPU (and the thread count) set the order of the sums.  A prune with
    near-tie 2:4 choices reproduces bit for bit only where that order is the same, so ``spense demo`` records this
    next to its numbers, and the published demo's test pins them only on a machine of the same digest."""
    import torch

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(576, 512, generator=g), torch.randn(384, 576, generator=g)
    h = x @ x.T / x.shape[1]
    lo = torch.linalg.cholesky(h + 0.01 * torch.eye(h.shape[0]))
    hinv = torch.cholesky_inverse(lo)
    y = w @ hinv
    outs = (h, lo, hinv, torch.linalg.solve_triangular(lo, w.T, upper=False), y,
            torch.randn(1 << 16, generator=g).sum(), torch.softmax(y, -1), torch.nn.functional.silu(y),
            y * torch.rsqrt((y * y).mean(-1, keepdim=True)))
    d = hashlib.sha256()
    for t in outs:
        d.update(t.contiguous().numpy().tobytes())
    return d.hexdigest()[:12]


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(source_digest())
        return 0
    found = commits_with(args[0])
    print(" ".join(found) if found else f"no commit among the last 200 has source digest {args[0]}")
    return 0 if found else 1


if __name__ == "__main__":
    raise SystemExit(main())
