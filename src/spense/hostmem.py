"""The host's memory: what is available (Linux's ``/proc/meminfo``), and a refusal of work that cannot fit.

A model that does not fit is killed by the kernel's OOM killer without a word; a count before the load gives the
user one line instead.  A memory cgroup's limit (Slurm, Kubernetes, Docker) counts as the host's.
"""

from __future__ import annotations

from pathlib import Path

from spense.errors import InputError


def mem_available(swap: bool = False, meminfo: str = "/proc/meminfo", cgroup_root: str = "/sys/fs/cgroup",
                  self_cgroup: str = "/proc/self/cgroup") -> int | None:
    """Bytes the host can still give: ``MemAvailable`` (plus ``SwapFree`` with ``swap``), or None where unknown;
    at most what this process's memory cgroup has left (:func:`cgroup_available`: a Slurm job's, a container's)."""
    want = {"MemAvailable:"} | ({"SwapFree:"} if swap else set())
    got = {}
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                key, *rest = line.split()
                if key in want:
                    got[key] = int(rest[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if not want <= set(got):
        return None
    cg = cgroup_available(cgroup_root, self_cgroup)
    return sum(got.values()) if cg is None else min(sum(got.values()), cg)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _stat(path: Path, key: str) -> int:
    """One counter of a cgroup's ``memory.stat`` (0 where absent)."""
    for line in (_read(path) or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key and v.isdigit():
            return int(v)
    return 0


def cgroup_available(root: str = "/sys/fs/cgroup", self_cgroup: str = "/proc/self/cgroup") -> int | None:
    """Bytes left under this process's cgroup memory limit, or None where there is no limit or it cannot be read.

    cgroup v2: ``memory.max − (memory.current − file)``; v1: ``memory.limit_in_bytes − (memory.usage_in_bytes −
    total_cache)``.  The page cache (``file``, ``total_cache``) is given back under pressure, so it counts as
    available, as ``MemAvailable`` counts it.  The folder is the one ``/proc/self/cgroup`` names, else the root (a
    container sees its own cgroup there)."""
    lines = (_read(Path(self_cgroup)) or "").splitlines()
    v2 = [ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")]
    v1 = [ln.split(":", 2)[2] for ln in lines if ln.count(":") >= 2 and "memory" in ln.split(":", 2)[1].split(",")]
    for base, rel, limit, used, cache in (
        (Path(root), v2, "memory.max", "memory.current", "file"),
        (Path(root) / "memory", v1, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_cache"),
    ):
        for d in ([base / r.lstrip("/") for r in rel] + [base]):
            lim, cur = _read(d / limit), _read(d / used)
            if lim is None or cur is None:
                continue
            if not lim.isdigit() or int(lim) >= 1 << 60 or not cur.isdigit():  # "max", or v1's huge "no limit"
                return None
            return max(0, int(lim) - (int(cur) - _stat(d / "memory.stat", cache)))
    return None


def check_fits(need: int, what: str, hint: str, available: int | None = None) -> None:
    """Raise :class:`InputError` when ``need`` bytes exceed the host's free memory and swap (``available``:
    measured by :func:`mem_available` when None; nothing is checked where it cannot be read)."""
    available = mem_available(swap=True) if available is None else available
    if available is not None and need > available:
        raise InputError(f"{what} needs {need / 1e9:.1f} GB of host memory; {available / 1e9:.1f} GB are "
                         f"available (free memory and swap). {hint}")
