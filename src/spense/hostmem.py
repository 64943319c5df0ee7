"""The host's memory: what is available (Linux's ``/proc/meminfo``), and a refusal of work that cannot fit.

A model that does not fit is killed by the kernel's OOM killer without a word; a count before the load gives the
user one line instead.
"""

from __future__ import annotations

from spense.errors import InputError


def mem_available(swap: bool = False, meminfo: str = "/proc/meminfo") -> int | None:
    """Bytes the host can still give: ``MemAvailable`` (plus ``SwapFree`` with ``swap``), or None where unknown."""
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
    return sum(got.values()) if want <= set(got) else None


def check_fits(need: int, what: str, hint: str, available: int | None = None) -> None:
    """Raise :class:`InputError` when ``need`` bytes exceed the host's free memory and swap (``available``:
    measured by :func:`mem_available` when None; nothing is checked where it cannot be read)."""
    available = mem_available(swap=True) if available is None else available
    if available is not None and need > available:
        raise InputError(f"{what} needs {need / 1e9:.1f} GB of host memory; {available / 1e9:.1f} GB are "
                         f"available (free memory and swap). {hint}")
