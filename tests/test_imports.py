"""Every module of src/spense imports in a fresh interpreter; the import graph has no circle; imports go down the
floors of docs/design.md only; nothing imports the CLI; the engine does not import the report module; the wheel
ships every kernel source."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "spense"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports (anywhere in the file, lazy imports included)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name and not (path.name == "__init__.py" and t.startswith(name + ".")):
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {n: _imports(n, p, mods) for n, p in mods.items()}


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(g):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle():
    # a package's __init__ importing its own submodules is not a circle (excluded above)
    assert _cycle(graph()) is None, _cycle(graph())


def test_nothing_imports_the_cli_and_the_engine_not_the_report():
    g = graph()
    bad = sorted(n for n, deps in g.items() if not n.startswith("spense.cli")
                 and any(d == "spense.cli" or d.startswith("spense.cli.") for d in deps))
    assert not bad, bad
    eng = sorted(n for n, deps in g.items() if n.startswith("spense.engine") and "spense.report" in deps)
    assert not eng, eng
    assert "spense.engine.model" in g and "spense.runtime.linear" in g["spense.engine.load"]


# docs/design.md's floors, lowest first; a module may import its own floor and those below, never one above
FLOORS = (
    {"spense", "spense.errors"},
    {"spense.registry", "spense.format", "spense.masks", "spense.hessian", "spense.solver", "spense.sweep_graphs",
     "spense.selection", "spense.methods", "spense.allocate"},
    {"spense.hf", "spense.side_files", "spense.hostmem", "spense.capture", "spense.resume", "spense.pipeline",
     "spense.models", "spense.weights", "spense.gguf_source", "spense.sensitivity", "spense.dense_layers",
     "spense.log", "spense.data", "spense.evaluate", "spense.provenance", "spense.atomic", "spense.outdir",
     "spense.io"},
    {"spense.runtime"},
    {"spense.engine", "spense.report"},
    {"spense.cli"},
)


def floor_of(name: str) -> int:
    """The floor of module ``name`` (a package's submodules share its floor); ``ValueError`` for a module no floor
    names, so that a new module is placed on purpose."""
    for i, names in enumerate(FLOORS):
        if name in names or any(name.startswith(n + ".") for n in names if n != "spense"):
            return i
    raise ValueError(f"{name} is on no floor: add it to FLOORS (and to docs/design.md)")


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{n} -> {d}" for n, deps in g.items() for d in deps if floor_of(d) > floor_of(n))


def test_upward_import_finder():
    assert upward_imports({"spense.solver": {"spense.runtime.linear", "spense.format"}}) == [
        "spense.solver -> spense.runtime.linear"]
    assert upward_imports({"spense.engine.model": {"spense.runtime.linear", "spense.io", "spense.report"}}) == []
    with pytest.raises(ValueError, match="spense.newthing is on no floor"):
        floor_of("spense.newthing")


def test_imports_go_down_the_floors_only():
    """Lazy imports count too: a math module importing the runtime inside a function is still an upward import."""
    g = graph()
    assert all(floor_of(n) >= 0 for n in g)
    assert not upward_imports(g), upward_imports(g)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(_modules())
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\nprint('ok')\n"
    r = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=170,
                       env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_cli_starts_without_torch():
    """``spense -h`` and a mistyped flag answer in a fraction of a second: importing the CLI loads neither torch
    nor transformers (each command imports them when it runs)."""
    code = ("import sys\nimport spense.cli\n"
            "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr[-2000:])


def test_package_data_ships_every_kernel_source():
    """A wheel carries every file the extension build reads (the .cu and each header beside it) and
    every table the runtime loads (runtime/*.json)."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["spense"]
    rt = root / "src" / "spense" / "runtime"
    files = [p.relative_to(root / "src" / "spense").as_posix()
             for p in [*(rt / "csrc").iterdir(), *rt.glob("*.json")] if p.is_file()]
    assert any(f.endswith(".cuh") for f in files) and any(f.endswith("mmasp_cfg_h200.json") for f in files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, missing
