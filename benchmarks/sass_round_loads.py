"""Branches between a loop's weight loads, per kernel of a ``cuobjdump -sass`` listing.

    cuobjdump -sass /tmp/mmasp_bulk_check > sass.txt      # (cuobjdump needs nvdisasm on PATH)
    python benchmarks/sass_round_loads.py sass.txt [--match spense_mmasp_kernel] [--demangle]

For every loop (a backward branch and its target) holding at least ``--min-loads`` 16-byte streaming loads
(``LDG.E.NA.128``: the mma.sp register kernel's weights, ``ldg_stream``), it prints the loads and the branches
between the first and the last of them.  The bf16 register kernel lost 11-40 % per layer when ptxas put each step
of a round's loads behind a branch of its own (3 branches a round of 4 steps) instead of predicating them
(benchmarks/results/wgsd_2026-12-02, folders bj and bk): a nonzero count marks a kernel to time against a form
without them (the harness's ``clamp`` column).  Exit status 1 if ``--fail-on`` names a kernel (a substring of its
name) that has any.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

_FUNC = re.compile(r"\s+Function : (\S+)")
_INS = re.compile(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);")
_TARGET = re.compile(r"0x([0-9a-f]+)\s*$")


def functions(text: str) -> dict[str, list[tuple[int, str]]]:
    """``{kernel name: [(address, instruction), ...]}`` of a ``cuobjdump -sass`` listing."""
    out: dict[str, list[tuple[int, str]]] = {}
    body: list[tuple[int, str]] | None = None
    for line in text.splitlines():
        m = _FUNC.match(line)
        if m:
            body = out.setdefault(m.group(1), [])
            continue
        m = _INS.match(line)
        if m and body is not None:
            body.append((int(m.group(1), 16), m.group(2).strip()))
    return out


def opcode(ins: str) -> str:
    """The opcode of an instruction, past its predicate (``@P0``, ``@!P1``)."""
    t = ins.split()
    return t[1] if t and t[0].startswith("@") and len(t) > 1 else (t[0] if t else "")


def is_branch(ins: str) -> bool:
    """A branch: ``BRA`` in any form (``BRA.U``, ``BRA.DIV``, ...) or ``BRX``."""
    return opcode(ins).split(".")[0] in ("BRA", "BRX")


def loops(body: list[tuple[int, str]]) -> list[tuple[int, int]]:
    """``(first, last)`` instruction indices of each loop: a branch to an earlier address of the kernel (a loop
    inside another is listed on its own too)."""
    at = {a: i for i, (a, _) in enumerate(body)}
    out = []
    for i, (a, ins) in enumerate(body):
        if is_branch(ins):
            m = _TARGET.search(ins)
            if m and int(m.group(1), 16) < a and int(m.group(1), 16) in at:
                out.append((at[int(m.group(1), 16)], i))
    return out


def round_load_branches(body: list[tuple[int, str]], min_loads: int = 4) -> list[tuple[int, int]]:
    """``(loads, branches)`` per loop with at least ``min_loads`` weight loads: its ``LDG.E.NA.128`` count and the
    branches between the first and the last of them."""
    out = []
    for s, e in loops(body):
        ld = [i for i in range(s, e + 1) if opcode(body[i][1]).startswith("LDG.E.NA.128")]
        if len(ld) >= min_loads:
            out.append((len(ld), sum(is_branch(body[i][1]) for i in range(ld[0], ld[-1]))))
    return out


def demangle(names: list[str]) -> dict[str, str]:
    """Readable names through c++filt where it is on PATH (else the names as they are)."""
    if not names or shutil.which("c++filt") is None:
        return {n: n for n in names}
    res = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True)
    return {n: d.split("(")[0] for n, d in zip(names, res.stdout.splitlines())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("listing", help="the output of cuobjdump -sass")
    ap.add_argument("--match", default="", help="only kernels whose (demangled) name holds this")
    ap.add_argument("--min-loads", type=int, default=4)
    ap.add_argument("--fail-on", default="", help="exit 1 if a kernel whose name holds this has a branch")
    ap.add_argument("--demangle", action="store_true", help="print names through c++filt")
    a = ap.parse_args(argv)
    try:
        text = open(a.listing, encoding="utf-8").read()
    except OSError as e:
        print(f"error: cannot read {a.listing}: {e.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"error: {a.listing} is not text (give the output of cuobjdump -sass, not the binary)", file=sys.stderr)
        return 2
    fns = functions(text)
    if not fns:
        print(f"error: no kernels in {a.listing} (is it the output of cuobjdump -sass?)", file=sys.stderr)
        return 2
    names = demangle(list(fns)) if a.demangle or a.match or a.fail_on else {n: n for n in fns}
    if (a.match or a.fail_on) and shutil.which("c++filt") is None:
        print("warning: c++filt not found: --match and --fail-on see the mangled names", file=sys.stderr)
    bad = 0
    for n, body in fns.items():
        if a.match not in names[n]:
            continue
        r = round_load_branches(body, a.min_loads)
        if not r:
            continue
        print(f"{names[n]}  {len(body)} instructions  " + "  ".join(f"loop: {ld} loads, {br} branches" for ld, br in r))
        if a.fail_on and a.fail_on in names[n] and any(br for _, br in r):
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
